"""Contracts of the ops routes (health, readiness, the OpenAPI document) and
the error body every failing answer has."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from contracts.base import Answer


class ErrorDetail(Answer):
    code: str = Field(description="Stable snake_case code")
    message: str
    fields: dict[str, str] | None = Field(default=None, description="Per-field reasons (validation only)")


class ErrorBody(Answer):
    error: ErrorDetail


class Health(Answer):
    status: str


class Readiness(Answer):
    status: str
    checks: dict[str, str]


class OpenApiDocument(Answer):
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
