"""Products: the catalogue invoices are made of (1C nomenclature)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from contracts.crm import ProductCreate, ProductUpdate
from services.crm import records as R
from services.crm.invoices import money
from services.crm.models import InvoiceLine, Product
from services.crm.search import search_text
from services.crm.work import Work


def rate_text(value: Decimal | None) -> str | None:
    """"20" rather than "20.00"; None is без НДС."""
    if value is None:
        return None
    return format(value.normalize(), "f")


class Products(R.Kind):
    name, entity, model = "products", "product", Product
    create_schema, update_schema = ProductCreate, ProductUpdate
    not_null = frozenset({"name", "price", "currency", "active"})
    sort_columns = {"name": Product.name, "created_at": Product.created_at}

    def values(self, row: Any) -> dict[str, Any]:
        unit = {"code": row.unit_code, "name": row.unit_name} if row.unit_code else None
        return {"name": row.name, "article": row.article, "group": row.group, "unit": unit,
                "price": row.price, "currency": row.currency, "vat_rate": rate_text(row.vat_rate),
                "external_id": row.external_id, "active": row.active}

    def exported(self, data: dict[str, Any]) -> dict[str, Any]:
        code, name = data.pop("unit_code"), data.pop("unit_name")
        data["unit"] = {"code": code, "name": name} if code else None
        data["vat_rate"] = rate_text(data["vat_rate"])
        return data

    def apply(self, work: Work, row: Any, data: dict[str, Any], creating: bool) -> None:
        if "unit" in data:
            unit = data.pop("unit") or {}
            row.unit_code, row.unit_name = unit.get("code"), unit.get("name")
        super().apply(work, row, data, creating)
        row.price = money(row.price)

    def search_text(self, row: Any) -> str:
        return search_text(row.name, row.article, row.group)

    def before_delete(self, work: Work, row: Any) -> None:
        used = {"invoice lines": R.count_where(work, InvoiceLine, InvoiceLine.product_id == row.id)}
        if any(used.values()):
            raise R.in_use(used, "product")
