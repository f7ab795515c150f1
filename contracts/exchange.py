"""Contracts of the 1C exchange: the exchange versions, the tenant's
exchange settings (the guide's "Интеграция с 1С" form), import and export
jobs, the exchange log, and the batch of objects the onec service sends the
crm service.

An exchange file is read into plain objects (``ExchangeObject``): a kind
(``counterparty``, ``contact``, ``product``, ``offer``, ``payment``), the
1C identifier (``ref``), the crm create contract's fields, and whether 1C
deleted or marked it for deletion. The crm service matches each by the 1C
identifier first, then by ИНН+КПП (counterparties) or article (products);
``overwrite`` decides whether a found record is updated or left alone, and a
deletion deactivates, never deletes."""
from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from contracts.base import Answer, Contract, Cursor, UtcDateTime

ImportObject = Literal["payments", "products", "counterparties", "contacts", "service_data"]
ExportObject = Literal["invoices", "counterparties", "contacts", "products"]
# the object list an item of the file belongs to (service data is kept by the onec service itself)
OBJECT_OF_KIND = {"counterparty": "counterparties", "contact": "contacts", "product": "products",
                  "offer": "products", "payment": "payments", "unit": "service_data", "currency": "service_data",
                  "organisation": "service_data"}
CRM_KINDS = ("counterparty", "contact", "product", "offer", "payment")
VersionId = Literal["bp82", "enterprisedata-1.8", "commerceml-2.10"]


class ExchangeVersion(Answer):
    id: str
    title: str
    description: str
    import_objects: list[str] = Field(description="What a file of this version loads into the CRM")
    export_objects: list[str] = Field(description="What the CRM writes in this version")
    has_rules: bool = Field(description="The 1C side loads an exchange-rules file (GET .../rules)")


VERSIONS: tuple[ExchangeVersion, ...] = (
    ExchangeVersion(
        id="bp82", title="1С:Бухгалтерия 8.2 (универсальный обмен, КД 2.0)",
        description=("Версия обмена предназначена для интеграции с 1С:Бухгалтерия v.8.2. Объекты обмена: "
                     "Контрагенты, Счета (только из CRM), Поступления (только из 1С), Номенклатура, Контакты. "
                     "Синхронизируются единицы измерения, частично организации, валюты. Файл обмена — "
                     "универсальный формат «Конвертации данных 2» (ФайлОбмена 2.0); правила обмена для 1С: "
                     "GET /api/v1/exchange/versions/bp82/rules."),
        import_objects=["payments", "products", "counterparties", "contacts", "service_data"],
        export_objects=["invoices", "counterparties", "contacts", "products"], has_rules=True),
    ExchangeVersion(
        id="enterprisedata-1.8", title="1С:Бухгалтерия 3.0 (EnterpriseData 1.8)",
        description=("Версия обмена предназначена для интеграции с 1С:Бухгалтерия 3.0 и другими конфигурациями "
                     "8.3 через универсальный формат EnterpriseData 1.8. Объекты обмена: Контрагенты, "
                     "Номенклатура, Поступления (только из 1С: ПБДС и ПКО), Счета и Контакты (только из CRM; "
                     "контакты — как контактная информация их контрагентов). Синхронизируются единицы "
                     "измерения, валюты, организации, удаления."),
        import_objects=["payments", "products", "counterparties", "service_data"],
        export_objects=["invoices", "counterparties", "contacts", "products"], has_rules=False),
    ExchangeVersion(
        id="commerceml-2.10", title="CommerceML 2.10 (1С:Управление торговлей, сайты)",
        description=("Версия обмена для торговых конфигураций и коннекторов сайтов: каталог (import.xml: "
                     "группы, товары, единицы), предложения (offers.xml: цены и остатки), документы "
                     "(контрагенты, их представители, поступления). Из CRM выгружаются счета как документы "
                     "с контрагентами и контактами. Доступен HTTP-обмен 1С (/api/v1/exchange/1c)."),
        import_objects=["payments", "products", "counterparties", "contacts", "service_data"],
        export_objects=["invoices"], has_rules=False),
)


def version_of(version_id: str) -> ExchangeVersion | None:
    return next((v for v in VERSIONS if v.id == version_id), None)


def _listed(value: Any) -> Any:
    """``objects`` in a query string is a comma-separated list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class TimeWindow(Contract):
    since: UtcDateTime | None = Field(default=None, description="Время начала: records changed from then")
    until: UtcDateTime | None = Field(default=None, description="Время конца: records changed until then")

    @model_validator(mode="after")
    def _ordered(self) -> "TimeWindow":
        if self.since and self.until and self.since > self.until:
            raise ValueError("since must not be after until")
        return self


class ExchangeSettingsIn(Contract):
    version: VersionId = Field(description="Версия обмена")
    file_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = Field(
        default=None, description="Файл обмена: the name exported files are given")
    import_objects: list[ImportObject] = Field(default_factory=list, max_length=5,
                                               description="Объекты для загрузки в CRM")
    export_objects: dict[ExportObject, TimeWindow] = Field(
        default_factory=dict, description="Объекты для выгрузки из CRM, each with its time window")
    overwrite: bool = Field(default=False, description="Перезаписывать записи в CRM, если найдены")

    @model_validator(mode="after")
    def _offered(self) -> "ExchangeSettingsIn":
        version = version_of(self.version)
        assert version is not None
        wrong: list[str] = [o for o in self.import_objects if o not in version.import_objects]
        wrong += [o for o in self.export_objects if o not in version.export_objects]
        if wrong:
            raise ValueError(f"the version {self.version} does not exchange {', '.join(wrong)}")
        return self


class ExchangeSettingsOut(Answer):
    version: str
    file_name: str | None
    import_objects: list[str]
    export_objects: dict[str, dict[str, str | None]]
    overwrite: bool
    updated_at: str | None


class ExchangeImportQuery(Contract):
    version: VersionId | None = Field(
        default=None, description="The settings' version when omitted")
    objects: Annotated[list[ImportObject], Field(max_length=5)] | None = Field(
        default=None, description="Comma-separated; the settings' import objects when omitted")
    overwrite: bool | None = Field(default=None, description="The settings' flag when omitted")
    file_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None

    _split = field_validator("objects", mode="before")(classmethod(lambda cls, v: _listed(v)))


class ExchangeExportIn(Contract):
    version: VersionId | None = Field(
        default=None, description="The settings' version when omitted")
    objects: Annotated[list[ExportObject], Field(max_length=4)] | None = Field(
        default=None, description="The settings' export objects when omitted")
    since: UtcDateTime | None = Field(default=None, description="Every object's start (else the settings')")
    until: UtcDateTime | None = Field(default=None, description="Every object's end (else the settings')")


class JobAccepted(Answer):
    job_id: str


class ExchangeJobOut(Answer):
    id: str
    direction: str = Field(description="import or export")
    version: str
    objects: list[str]
    overwrite: bool
    file_name: str | None
    status: str = Field(description="queued, running, done, failed")
    read: int = Field(description="Objects read from the file (an export: objects written)")
    created: int
    updated: int
    skipped: int
    rejected: int
    deactivated: int = Field(description="Products from 1C that a full catalogue left out, deactivated")
    progress: int = Field(description="Percent done")
    error: str | None
    download_url: str | None = Field(description="The exported file, once the export is done")
    created_at: str
    finished_at: str | None


class LogQuery(Contract):
    job_id: uuid.UUID | None = None
    level: Literal["info", "warning", "error"] | None = None
    limit: int = Field(default=100, ge=1, le=500)
    cursor: Cursor | None = None


class LogEntryOut(Answer):
    id: int
    job_id: str | None
    at: str
    level: str = Field(description="info, warning (an object left out) or error")
    message: str
    path: str | None = Field(description="Where in the file: element path and position")


# -- between the onec and crm services ------------------------------------------------------

Kind = Literal["counterparty", "contact", "product", "offer", "payment"]


class ExchangeObject(Contract):
    n: int = Field(ge=0, description="The object's position in the file")
    kind: Kind
    ref: Annotated[str, StringConstraints(max_length=200)] | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    # 1C identifiers of the records this one points at (a contact's or payment's counterparty...)
    links: dict[str, Annotated[str, StringConstraints(max_length=200)]] = Field(default_factory=dict)
    deleted: bool = False
    # a record another object only points at (a payment's payer): created when missing, never updated
    reference: bool = False


class ExchangeBatch(Contract):
    job_id: uuid.UUID
    batch: int = Field(ge=0)
    overwrite: bool
    # when set, products touched are stamped so that a full catalogue can deactivate the rest
    stamp: UtcDateTime | None = None
    objects: list[ExchangeObject] = Field(max_length=5000)


class ExportPageQuery(Contract):
    since: UtcDateTime | None = None
    until: UtcDateTime | None = None
    # counterparties: with their contact people (EnterpriseData carries them as contact information)
    with_contacts: bool = False
