"""Builds the OpenAPI 3 document from the ``@api`` declarations of a service
class: the same schemas that validate requests describe them."""
from __future__ import annotations

import inspect
import re
from typing import Any, Literal

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from pydantic import BaseModel

from contracts.ops import ErrorBody
from gateway.entrypoints import ApiEndpoint

_PARAM = re.compile(r"<(?:(?P<conv>[a-z]+):)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)>")
_ERRORS = {
    "400": "Malformed request", "401": "Not authenticated", "403": "Not allowed",
    "404": "Not found", "409": "Conflict", "413": "Body too large", "422": "Validation failed",
    "429": "Throttled", "502": "A server of the user's (mail, SIP) refused or failed", "503": "A dependency is down",
}


def _schema_ref(model: type[BaseModel], components: dict[str, Any],
                mode: Literal["validation", "serialization"] = "validation") -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _applies(code: str, ep: ApiEndpoint, has_params: bool) -> bool:
    if int(code) in ep.errors:
        return True
    if code in ("401", "403"):
        return ep.auth is not None
    if code in ("400", "413"):
        return ep.body_schema is not None or bool(ep.raw_body)
    if code == "422":  # a NUL character in a path value is a 422 too
        return ep.body_schema is not None or ep.query_schema is not None or has_params or bool(ep.raw_body)
    if code == "404":
        return has_params
    if code == "409":
        return ep.method in ("POST", "PUT", "PATCH", "DELETE")
    if code == "429":
        return False
    return True


def endpoints(service_cls: type) -> list[tuple[str, ApiEndpoint]]:
    found = []
    for name, member in inspect.getmembers(service_cls, inspect.isfunction):
        for ext in getattr(member, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(ext, ApiEndpoint):
                found.append((name, ext))
    return sorted(found, key=lambda item: (item[1].url, item[1].method))


def build_openapi(service_cls: type, title: str, version: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    error_ref = _schema_ref(ErrorBody, components, "serialization")
    for name, ep in endpoints(service_cls):
        path = _PARAM.sub(lambda m: "{" + m.group("name") + "}", ep.url)
        params = [
            {"name": m.group("name"), "in": "path", "required": True,
             "schema": {"type": "integer" if m.group("conv") == "int" else "string"}}
            for m in _PARAM.finditer(ep.url)
        ]
        if ep.query_schema is not None:
            qschema = ep.query_schema.model_json_schema()
            required = set(qschema.get("required", []))
            for pname, prop in qschema.get("properties", {}).items():
                params.append({"name": pname, "in": "query", "required": pname in required, "schema": prop})
        op: dict[str, Any] = {"operationId": name, "summary": ep.summary or name.replace("_", " "),
                              "tags": list(ep.tags) or ["default"]}
        if params:
            op["parameters"] = params
        if ep.raw_body:
            op["requestBody"] = {"required": True, "content": {
                ctype: {"schema": {"type": "string", "format": "binary"}} for ctype in ep.raw_body}}
        if ep.body_schema is not None:
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": _schema_ref(ep.body_schema, components)}}}
        ok: dict[str, Any] = {"description": "OK"}
        if ep.raw_response:
            ok["content"] = {ep.raw_response: {"schema": {"type": "string"}}}
        elif ep.response_schema is not None:
            schema = _schema_ref(ep.response_schema, components, "serialization")
            ok["content"] = {"application/json": {"schema": schema}}
        responses: dict[str, Any] = {str(ep.status): ok}
        for code, text in _ERRORS.items():
            if not _applies(code, ep, bool(params)):
                continue
            body = {"schema": error_ref} if ep.error_type == "application/json" else {"schema": {"type": "string"}}
            responses[code] = {"description": text, "content": {ep.error_type: body}}
        op["responses"] = responses
        if ep.auth is not None:
            op["security"] = [{"operatorToken": []}] if ep.auth == "operator" else [{"bearerAuth": []}]
        for method in ep.method.split(","):
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "operatorToken": {"type": "http", "scheme": "bearer",
                                  "description": "The platform operator token (CRM_OPERATOR_TOKEN)"},
            },
        },
    }
