"""The crm service's rules without a broker or a database: ИНН/КПП, phone
and e-mail normalisation, invoice arithmetic in exact decimals, invoice
status, search terms, scopes as SQL, the principal cache and input schemas."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy.dialects import postgresql

from contracts.crm import CounterpartyCreate, InvoiceLineIn, ProductCreate, counterparty_problems
from contracts.inn import inn_problem, is_valid_inn, kpp_problem
from contracts.phones import PhoneError, normalize_email, normalize_phone, try_normalize_phone
from crm_shared import scopes
from crm_shared.errors import Forbidden, ValidationFailed
from services.crm import invoices as I
from services.crm.models import Contact
from services.crm.principals import PrincipalCache
from services.crm.schemas import parse, parse_list_query
from services.crm.search import search_text, terms

# -- ИНН and КПП ---------------------------------------------------------------

# real, published ИНН: ПАО Сбербанк, ООО «Яндекс», АО «ТБанк», ООО «Газпром экспорт»
# (10 digits), and the individual's example from the ФНС documentation (12 digits)
VALID_INN = ["7707083893", "7736207543", "7710140679", "7728168971", "500100732259"]
INVALID_INN = {
    "7707083894": "check digit",       # Сбербанк's with the last digit changed
    "7736207534": "check digit",       # two digits swapped
    "500100732258": "check digits",
    "500100732269": "check digits",
    "770708389": "10 digits",
    "77070838930": "10 digits",
    "77070838 3": "digits only",
    "0000000000": "region code",
}


@pytest.mark.parametrize("value", VALID_INN)
def test_valid_inn(value):
    assert inn_problem(value) is None and is_valid_inn(value)


@pytest.mark.parametrize("value,why", INVALID_INN.items())
def test_invalid_inn_says_why(value, why):
    assert why in (inn_problem(value) or "")


def test_kpp():
    assert kpp_problem("773601001") is None
    assert kpp_problem("7736AB001") is None  # letters in the reason code since 2013
    assert "9 characters" in (kpp_problem("77360100") or "")
    assert kpp_problem("7736ab00x") is not None


def test_counterparty_rules_between_fields():
    assert counterparty_problems("legal", "7707083893", "773601001") == {}
    assert counterparty_problems("individual", "500100732259", None) == {}
    assert "10 digits" in counterparty_problems("legal", "500100732259", None)["inn"]
    assert "12 digits" in counterparty_problems("individual", "7707083893", None)["inn"]
    assert "no КПП" in counterparty_problems("individual", "500100732259", "773601001")["kpp"]
    assert "ИНН" in counterparty_problems("legal", None, "773601001")["kpp"]


def test_counterparty_schema_names_the_field():
    body = parse(CounterpartyCreate, {"name": "Ромашка", "inn": " 7707 083 893 ", "kpp": "773601001"})
    assert body.inn == "7707083893"
    with pytest.raises(ValidationFailed) as exc:
        parse(CounterpartyCreate, {"name": "Ромашка", "inn": "7707083894", "phones": ["+7 916 123-45-67", "12"],
                                   "emails": ["not-an-address"]})
    assert set(exc.value.fields) == {"inn", "phones.1", "emails.0"}
    assert "ИНН" in exc.value.fields["inn"]


# -- phones and e-mails ------------------------------------------------------------

@pytest.mark.parametrize("text", ["8 (916) 123-45-67", "+7 916 1234567", "9161234567", "7 916 123 45 67",
                                  "+7(916)123-45-67 доб. 204", "8-916-123-45-67", "8 10 7 916 123 45 67"])
def test_russian_numbers_normalise_to_e164(text):
    assert normalize_phone(text) == "+79161234567"


@pytest.mark.parametrize("text,e164", [
    ("8-800-555-35-35", "+78005553535"),
    ("+44 20 7946 0958", "+442079460958"),
    ("00 44 20 7946 0958", "+442079460958"),
    ("+1 (212) 555-0100", "+12125550100"),
    ("380441234567", "+380441234567"),
])
def test_other_numbers(text, e164):
    assert normalize_phone(text) == e164


@pytest.mark.parametrize("text", ["123-45-67", "", "call me", "+0 123 4567", "+7 916 12345678901234"])
def test_numbers_that_cannot_be_placed(text):
    with pytest.raises(PhoneError):
        normalize_phone(text)
    assert try_normalize_phone(text) is None


def test_emails_match_in_lower_case():
    assert normalize_email("  Ivan.Petrov@Example.RU ") == "ivan.petrov@example.ru"
    assert normalize_email("<ivan@example.ru>") == "ivan@example.ru"
    with pytest.raises(ValueError):
        normalize_email("ivan@")


# -- invoice arithmetic -----------------------------------------------------------

def line(quantity: str, price: str, discount: str = "0", vat: str | None = "20") -> I.LineInput:
    return I.LineInput(Decimal(quantity), Decimal(price), Decimal(discount), None if vat is None else Decimal(vat))


def test_vat_is_included_in_the_price():
    totals = I.compute_totals([line("3", "100.00", "10", "20")])
    # 300.00 − 30.00 discount = 270.00, of which VAT 20/120 = 45.00
    assert totals.as_strings() == {"subtotal": "300.00", "discount_total": "30.00", "vat_total": "45.00",
                                   "total": "270.00"}


def test_each_line_is_rounded_to_kopecks_half_up():
    # 1.5 × 0.03 = 0.045 → 0.05 (half up; half even would give 0.04)
    assert I.line_figures(line("1.5", "0.03", vat=None)).amount == Decimal("0.05")
    # 5 % of 0.10 = 0.005 → 0.01
    assert I.line_figures(line("1", "0.10", "5", vat=None)).discount_amount == Decimal("0.01")
    # 22 % inside 99.99: 18.0309… → 18.03
    assert I.line_figures(line("3", "33.33", vat="22")).vat_amount == Decimal("18.03")


def test_vat_is_summed_from_rounded_lines():
    # each line: VAT inside 1.00 at 20 % = 0.1666… → 0.17; three lines 0.51 (0.50 on the sum)
    totals = I.compute_totals([line("1", "1.00")] * 3)
    assert totals.vat_total == Decimal("0.51") and totals.total == Decimal("3.00")


def test_mixed_rates_discounts_and_no_vat():
    totals = I.compute_totals([
        # 2999.80 − 224.99 (224.985) = 2774.81; VAT 61045.82 / 122 = 500.3756… → 500.38
        line("2", "1499.90", "7.5", "22"),
        line("0.333", "120.00", "0", "10"),   # 39.96; VAT 3.63 (3.6327…)
        line("1", "5000.00", "100", "20"),    # a free line: 0
        line("4", "10.00", "0", None),        # без НДС: 40.00, no VAT
    ])
    assert totals.as_strings() == {"subtotal": "8079.76", "discount_total": "5224.99", "vat_total": "504.01",
                                   "total": "2854.77"}
    assert [f.vat_amount for f in totals.lines] == [Decimal("500.38"), Decimal("3.63"), Decimal("0.00"),
                                                    Decimal("0.00")]
    assert totals.total == totals.subtotal - totals.discount_total


def test_decimals_from_json_numbers_stay_exact():
    parsed = parse(InvoiceLineIn, {"product_id": str(uuid.uuid4()), "quantity": 0.1, "price": 0.2})
    assert parsed.quantity == Decimal("0.1") and parsed.price == Decimal("0.2")
    with pytest.raises(ValidationFailed) as exc:
        parse(InvoiceLineIn, {"product_id": str(uuid.uuid4()), "quantity": "1", "price": "10.001"})
    assert "lines" not in exc.value.fields and "price" in exc.value.fields
    assert parse(ProductCreate, {"name": "x", "vat_rate": "без НДС"}).vat_rate is None
    assert parse(ProductCreate, {"name": "x"}).vat_rate == Decimal("22")


def test_invoice_status_follows_payments():
    total = Decimal("100.00")
    assert I.status_after_payments(I.ISSUED, total, Decimal("40")) == I.PARTLY_PAID
    assert I.status_after_payments(I.DRAFT, total, Decimal("100.00")) == I.PAID
    assert I.status_after_payments(I.PAID, total, Decimal("150")) == I.PAID
    assert I.status_after_payments(I.PAID, total, Decimal("0")) == I.ISSUED
    assert I.status_after_payments(I.PARTLY_PAID, total, Decimal("0")) == I.ISSUED
    assert I.status_after_payments(I.DRAFT, total, Decimal("0")) == I.DRAFT
    assert I.status_change_problem(I.DRAFT, I.PAID, Decimal(0)) is not None
    assert I.status_change_problem(I.ISSUED, I.CANCELLED, Decimal("1")) is not None
    assert I.status_change_problem(I.ISSUED, I.CANCELLED, Decimal("0")) is None
    assert I.status_change_problem(I.CANCELLED, I.DRAFT, Decimal("0")) is None


# -- search --------------------------------------------------------------------------

def test_search_text_and_terms():
    text = search_text("ООО «Ёлка»", "7707083893", phones=["8 (916) 123-45-67"], emails=["Info@Elka.RU"])
    assert "елка" in text and "89161234567" in text and "79161234567" in text and "info@elka.ru" in text
    assert terms("+7 (916) 123") == ["7916123"]
    assert terms("916-12") == ["91612"]
    assert terms("Ёлка  Иван") == ["елка", "иван"]
    assert terms("  ") == []
    assert terms("8 (916) 123-45-60") == terms("89161234560") == terms("+7 916 1234560") == ["79161234560"]
    assert terms("123-45") == ["12345"]


# -- scopes as SQL ----------------------------------------------------------------------

def _sql(expr) -> str:
    return str(expr.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": False}))


def test_scopes_become_conditions_on_the_responsible_column():
    me, colleague = str(uuid.uuid4()), str(uuid.uuid4())
    principal = {"user_id": me, "department_user_ids": [colleague],
                 "rights": {"contacts.read": "department", "contacts.update": "own", "contacts.delete": "none",
                            "contacts.create": "all"}}
    column = Contact.responsible_id
    assert "= ANY" in _sql(scopes.filter_for(principal, "contacts.read", column))
    assert _sql(scopes.filter_for(principal, "contacts.update", column)).startswith("contacts.responsible_id =")
    assert _sql(scopes.filter_for(principal, "contacts.create", column)) == "true"
    with pytest.raises(Forbidden) as exc:
        scopes.filter_for(principal, "contacts.delete", column)
    assert exc.value.details["right"] == "contacts.delete" and "contacts.delete" in exc.value.message
    assert set(scopes.department_users(principal)) == {uuid.UUID(me), uuid.UUID(colleague)}
    assert scopes.covers(principal, "department", colleague) and not scopes.covers(principal, "own", colleague)


def test_list_queries_refuse_filters_that_mean_nothing():
    assert parse_list_query("contacts", {"q": "иван"}).sort == "name"
    assert parse_list_query("invoices", {}).sort == "-date"
    with pytest.raises(ValidationFailed) as exc:
        parse_list_query("products", {"counterparty_id": str(uuid.uuid4()), "sort": "-date"})
    assert set(exc.value.fields) == {"counterparty_id", "sort"}


# -- the principal cache ------------------------------------------------------------------

def test_principal_cache_ttl_and_invalidation():
    now = [0.0]
    cache = PrincipalCache(ttl_seconds=30, clock=lambda: now[0])
    fetched: list[str] = []

    def fetch(uid: str):
        def go():
            fetched.append(uid)
            return {"user_id": uid, "n": len(fetched)}
        return go

    assert cache.get("t1", "u1", fetch("u1"))["n"] == 1
    assert cache.get("t1", "u1", fetch("u1"))["n"] == 1          # cached
    cache.get("t1", "u2", fetch("u2"))
    cache.get("t2", "u1", fetch("u1"))
    assert cache.invalidate("t1", ["u1"]) == 1                   # only that user of that tenant
    assert cache.get("t1", "u1", fetch("u1"))["n"] == 4
    assert cache.get("t1", "u2", fetch("u2"))["n"] == 2
    assert cache.invalidate("t1", None) == 2                     # the whole tenant
    assert len(cache) == 1
    now[0] = 31                                                  # the TTL safety net
    assert cache.get("t2", "u1", fetch("u1"))["n"] == 5


def test_principal_fetched_across_an_invalidation_is_not_stored():
    cache = PrincipalCache()

    def racing():
        cache.invalidate("t1", None)  # the announcement arrives while the answer is on its way
        return {"stale": True}

    assert cache.get("t1", "u1", racing) == {"stale": True}
    assert len(cache) == 0
