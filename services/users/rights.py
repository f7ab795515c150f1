"""The rights catalogue, the built-in roles and the arithmetic of scopes.

A right is ``<entity>.<action>``. Object rights (``counterparties.read``…)
take a scope ``none`` < ``own`` < ``department`` < ``all``; action rights
(``users.manage``…) take ``none`` or ``all``. A user's effective scope for a
right is the most permissive one over the roles of all their positions."""
from __future__ import annotations

from typing import Iterable, Mapping

NONE, OWN, DEPARTMENT, ALL = "none", "own", "department", "all"
OBJECT_SCOPES: tuple[str, ...] = (NONE, OWN, DEPARTMENT, ALL)
ACTION_SCOPES: tuple[str, ...] = (NONE, ALL)
RANK = {NONE: 0, OWN: 1, DEPARTMENT: 2, ALL: 3}

OBJECT_ENTITIES: dict[str, str] = {
    "counterparties": "Контрагенты",
    "contacts": "Контакты",
    "products": "Продукты",
    "invoices": "Счета",
    "payments": "Поступления",
    "communications": "Коммуникации",
}
OBJECT_ACTIONS: dict[str, str] = {
    "create": "создание",
    "read": "просмотр",
    "update": "изменение",
    "delete": "удаление",
}
ACTION_RIGHTS: dict[str, str] = {
    "invoices.discount": "Начисление скидки в счетах",
    "users.manage": "Управление пользователями",
    "org.manage": "Управление оргструктурой, должностями и ролями",
    "journal.read": "Просмотр журнала изменений",
    "exchange.run": "Обмен данными с 1С",
    "csv.import": "Импорт из CSV",
    "csv.export": "Экспорт в CSV",
    "telephony.use": "Использование телефонии",
    "mail.send": "Отправка почты",
}

# code -> (title, allowed scopes), in catalogue order
CATALOGUE: dict[str, tuple[str, tuple[str, ...]]] = {}
for _entity, _entity_title in OBJECT_ENTITIES.items():
    for _action, _action_title in OBJECT_ACTIONS.items():
        CATALOGUE[f"{_entity}.{_action}"] = (f"{_entity_title}: {_action_title}", OBJECT_SCOPES)
for _code, _title in ACTION_RIGHTS.items():
    CATALOGUE[_code] = (_title, ACTION_SCOPES)

ADMIN_RIGHTS = ("users.manage", "org.manage")


def catalogue() -> list[dict[str, object]]:
    return [{"code": code, "title": title, "scopes": list(scopes)} for code, (title, scopes) in CATALOGUE.items()]


def validate_rights(rights: Mapping[str, str], prefix: str = "rights") -> dict[str, str]:
    """Problems by field name (``rights.<code>``): unknown codes and scopes the right does not take."""
    problems: dict[str, str] = {}
    for code, scope in rights.items():
        spec = CATALOGUE.get(code)
        if spec is None:
            problems[f"{prefix}.{code}"] = "unknown right (see GET /api/v1/rights)"
        elif scope not in spec[1]:
            problems[f"{prefix}.{code}"] = f"scope must be one of: {', '.join(spec[1])}"
    return problems


def complete(rights: Mapping[str, str]) -> dict[str, str]:
    """Every catalogue right with its scope (``none`` where not granted)."""
    return {code: rights.get(code, NONE) for code in CATALOGUE}


def granted(rights: Mapping[str, str]) -> dict[str, str]:
    """Only the rights above ``none`` (what is stored)."""
    return {code: scope for code, scope in rights.items() if scope != NONE and code in CATALOGUE}


def merge(role_rights: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The most permissive scope per right over several roles (every code present)."""
    result = dict.fromkeys(CATALOGUE, NONE)
    for rights in role_rights:
        for code, scope in rights.items():
            if code in result and RANK.get(scope, 0) > RANK[result[code]]:
                result[code] = scope
    return result


def allows(rights: Mapping[str, str], code: str, at_least: str = ALL) -> bool:
    return RANK.get(rights.get(code, NONE), 0) >= RANK[at_least]


def is_full_admin(rights: Mapping[str, str]) -> bool:
    return all(rights.get(code) == ALL for code in ADMIN_RIGHTS)


# -- the roles a new instance ships --------------------------------------

def _objects(scope: str, **overrides: str) -> dict[str, str]:
    rights = {f"{e}.{a}": scope for e in OBJECT_ENTITIES for a in OBJECT_ACTIONS}
    rights.update(overrides)
    return rights


ROLE_ADMIN, ROLE_MANAGER, ROLE_EMPLOYEE = "admin", "manager", "employee"

BUILTIN_ROLES: dict[str, tuple[str, dict[str, str]]] = {
    ROLE_ADMIN: ("Администратор", {code: scopes[-1] for code, (_, scopes) in CATALOGUE.items()}),
    # a head of a sales department: everything of their departments, the shared
    # product catalogue, discounts, the journal, CSV, telephony and mail
    ROLE_MANAGER: ("Руководитель", {
        **_objects(DEPARTMENT, **{"products.read": ALL}),
        "invoices.discount": ALL, "journal.read": ALL, "csv.import": ALL, "csv.export": ALL,
        "telephony.use": ALL, "mail.send": ALL,
    }),
    # a salesperson: their own records, reads the product catalogue, calls and mails
    ROLE_EMPLOYEE: ("Сотрудник", {
        **_objects(OWN, **{"products.read": ALL, "products.create": NONE, "products.update": NONE,
                           "products.delete": NONE}),
        "telephony.use": ALL, "mail.send": ALL,
    }),
}
