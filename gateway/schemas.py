"""Request and response schemas of the HTTP API. The same classes validate
requests and generate ``/openapi.json``."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable snake_case code")
    message: str
    fields: dict[str, str] | None = Field(default=None, description="Per-field reasons (validation only)")


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


class OpenApiDocument(BaseModel):
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
