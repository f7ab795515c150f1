"""Record resources declared once.

An ``Area`` names the service behind a group of routes, its tag and path
prefix; ``Area.routes(Resource(...), ...)`` generates, for each resource,
its list, count, create, read, update and delete routes (the ``actions`` it
has) as one route mixin for ``gateway.service``. Every generated route
validates with the resource's contracts, makes one RPC carrying the caller
and documents itself; operation ids are stable: ``list_contacts``,
``count_contacts``, ``create_contact``, ``get_contact``, ``update_contact``,
``delete_contact``.

Two RPC forms exist behind the routes:

- ``generic=True`` (crm): ``list_records(caller, kind, query)``,
  ``count_records``, ``create_record(caller, kind, body)``,
  ``get_record(caller, kind, id)``, ``update_record(caller, kind, id,
  body)``, ``delete_record(caller, kind, id)``;
- otherwise (users): ``list_<plural>(caller, query)``,
  ``create_<singular>(caller, body)``, ``get_<singular>(caller, id)``,
  ``update_<singular>(caller, id, body)``, ``delete_<singular>(caller, id)``.

Routes that are not record-shaped (login, unlock, readiness) stay explicit
``@api`` methods in ``gateway.routes``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel

from contracts.base import Count, list_of
from gateway.entrypoints import api
from gateway.tokens import caller

ACTIONS = ("list", "count", "create", "read", "update", "delete")


@dataclass(frozen=True)
class Resource:
    """One kind of record: ``Resource("contacts", "contact", ContactOut, query=ListQuery, create=ContactCreate,
    update=ContactUpdate)``."""

    path: str                                   # URL segment and, for generic services, the record kind
    singular: str                               # names the single-record operations (get_contact)
    out: type[BaseModel]                        # one record
    query: type[BaseModel] | None = None        # list filters (count takes the same)
    create: type[BaseModel] | None = None
    update: type[BaseModel] | None = None
    actions: tuple[str, ...] = ACTIONS
    list_model: type[BaseModel] | None = None  # {items, next_cursor}; list_of(out) when omitted
    summaries: dict[str, str] = field(default_factory=dict)  # per action, to add what the default does not say
    errors: dict[str, tuple[int, ...]] = field(default_factory=dict)  # per action, statuses beyond the implied
    # per action (update, delete): ``after(route, caller, record_id, body, answer)`` runs once the RPC
    # answered, before the HTTP answer goes (the users area ends sessions in this gateway there)
    after: dict[str, Callable[..., None]] = field(default_factory=dict)
    # a resource nested under another record: the URL segments before ``path``, with their path
    # parameters (``users/<string:user_id>``), passed to every RPC before the resource's own id
    parent: str = ""
    plural: str = ""  # names the list operations when ``path`` is no identifier (mail-accounts)

    @property
    def name(self) -> str:
        return self.plural or self.path

    def __post_init__(self) -> None:
        unknown = set(self.actions) - set(ACTIONS)
        assert not unknown, f"unknown actions {unknown}"
        assert ("create" not in self.actions) or self.create is not None, f"{self.path}: create needs a contract"
        assert ("update" not in self.actions) or self.update is not None, f"{self.path}: update needs a contract"


@dataclass(frozen=True)
class Area:
    """Routes of one service: ``Area("crm", tag="crm", generic=True).routes(...)``."""

    service: str
    tag: str
    prefix: str = "/api/v1"
    generic: bool = False
    right_prefix: bool = True  # default summaries name the <path>.<action> right (crm); users names its own

    def routes(self, *resources: Resource, name: str | None = None) -> type:
        namespace: dict[str, Any] = {"__doc__": f"Generated routes of {', '.join(r.path for r in resources)}."}
        for resource in resources:
            for action in resource.actions:
                op_id, fn = self._route(resource, action)
                assert op_id not in namespace, f"duplicate operation {op_id}"
                namespace[op_id] = fn
        return type(name or f"{self.tag.title()}Resources", (), namespace)

    # -- one route ---------------------------------------------------------------
    def _call(self, resource: Resource, action: str) -> Callable[..., Any]:
        """The RPC behind an action: ``call(handle, caller, *args)``."""
        if self.generic:
            method = {"list": "list_records", "count": "count_records", "create": "create_record",
                      "read": "get_record", "update": "update_record", "delete": "delete_record"}[action]
            kind = resource.path
            return lambda svc, who, *args: getattr(svc, method)(who, kind, *args)
        method = {"list": f"list_{resource.name}", "count": f"count_{resource.name}",
                  "create": f"create_{resource.singular}", "read": f"get_{resource.singular}",
                  "update": f"update_{resource.singular}", "delete": f"delete_{resource.singular}"}[action]
        return lambda svc, who, *args: getattr(svc, method)(who, *args)

    def _summary(self, resource: Resource, action: str) -> str:
        if action in resource.summaries:
            return resource.summaries[action]
        right = f" ({resource.path}.{ {'list': 'read', 'count': 'read', 'read': 'read'}.get(action, action)})" \
            if self.right_prefix else ""
        return {"list": f"A page of {resource.path} under your rights{right}",
                "count": f"How many {resource.path} the list shows (same filters){right}",
                "create": f"Create a {resource.singular}{right}",
                "read": f"A {resource.singular}{right}",
                "update": f"Change a {resource.singular}: the fields given change{right}",
                "delete": f"Delete a {resource.singular}{right}"}[action]

    def _route(self, resource: Resource, action: str) -> tuple[str, Callable[..., Any]]:
        call = self._call(resource, action)
        after = resource.after.get(action)
        service = self.service
        base = f"{self.prefix}/{resource.parent + '/' if resource.parent else ''}{resource.path}"
        item = f"{base}/<string:{resource.singular}_id>"
        common = {"tags": (self.tag,), "summary": self._summary(resource, action),
                  "errors": resource.errors.get(action, ())}

        def rpc(route: Any) -> Any:
            return getattr(route.cluster, service)

        if action in ("list", "count"):
            out = (resource.list_model or list_of(resource.out)) if action == "list" else Count
            op_id = f"{action}_{resource.name}"
            url = base if action == "list" else f"{base}/count"
            if resource.query is None:
                def handler(self: Any, request: Any, **path: str) -> Any:
                    return call(rpc(self), caller(self.context), *path.values())
            else:
                def handler(self: Any, request: Any, query: BaseModel, **path: str) -> Any:  # type: ignore[misc]
                    return call(rpc(self), caller(self.context), *path.values(),
                                query.model_dump(mode="json", exclude_unset=True))
            decorated = api("GET", url, query=resource.query, response=out, **common)(handler)
        elif action == "create":
            op_id = f"create_{resource.singular}"

            def handler(self: Any, request: Any, body: BaseModel, **path: str) -> Any:  # type: ignore[misc]
                return call(rpc(self), caller(self.context), *path.values(),
                            body.model_dump(mode="json", exclude_unset=True))
            decorated = api("POST", base, body=resource.create, response=resource.out, status=201,
                            **common)(handler)
        elif action == "read":
            op_id = f"get_{resource.singular}"

            def handler(self: Any, request: Any, **path: str) -> Any:
                return call(rpc(self), caller(self.context), *path.values())
            decorated = api("GET", item, response=resource.out, **common)(handler)
        elif action == "update":
            op_id = f"update_{resource.singular}"

            def handler(self: Any, request: Any, body: BaseModel, **path: str) -> Any:  # type: ignore[misc]
                who, data = caller(self.context), body.model_dump(mode="json", exclude_unset=True)
                answer = call(rpc(self), who, *path.values(), data)
                if after is not None:
                    after(self, who, *path.values(), data, answer)
                return answer
            decorated = api("PATCH", item, body=resource.update, response=resource.out, **common)(handler)
        else:
            op_id = f"delete_{resource.singular}"

            def handler(self: Any, request: Any, **path: str) -> Any:
                who = caller(self.context)
                call(rpc(self), who, *path.values())
                if after is not None:
                    after(self, who, *path.values(), None, None)
                return 204, None
            decorated = api("DELETE", item, status=204, **common)(handler)
        decorated.__name__ = decorated.__qualname__ = op_id
        return op_id, decorated
