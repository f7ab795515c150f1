"""YAML configuration with ``${VAR:default}`` substitution, validated into
typed settings before a service starts."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

# ${NAME}, ${NAME:default}; the default may be empty (``${NAME:}``).
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<default>[^}]*))?\}")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


def substitute(text: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    missing: list[str] = []

    def repl(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in env:
            return env[name]
        if default is None:
            missing.append(name)
            return ""
        return default

    result = _VAR.sub(repl, text)
    if missing:
        raise ConfigError(
            "missing environment variable(s) with no default: " + ", ".join(sorted(set(missing)))
        )
    return result


def referenced_variables(path: str | Path) -> set[str]:
    """Every environment variable a config file reads (used by the docs/deploy coverage test)."""
    names: set[str] = set()
    for line in Path(path).read_text().splitlines():
        if not line.lstrip().startswith("#"):
            names.update(m.group("name") for m in _VAR.finditer(line))
    return names


def load_yaml(path: str | Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    text = substitute(Path(path).read_text(), environ)
    # Values are substituted as text first, so YAML types them ("5" -> 5) as if written literally.
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


class ServiceSettings(BaseModel):
    """Settings every service reads. Keys are the nameko config keys (upper case)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    SERVICE_NAME: str
    AMQP_URI: str = Field(pattern=r"^amqps?://")
    DATABASE_URL: str | None = Field(default=None, pattern=r"^postgresql(\+psycopg2)?://")
    METRICS_PORT: int = Field(default=0, ge=0, le=65535)
    RPC_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0, le=300)
    LOG_LEVEL: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    LOG_FORMAT: str = Field(default="json", pattern=r"^(json|text)$")
    MIGRATE_ON_START: bool = True
    # nameko's worker pool per process (its "max_workers" key is set from this)
    MAX_WORKERS: int = Field(default=10, ge=1, le=1000)
    DB_POOL_SIZE: int = Field(default=5, ge=1, le=100)
    OUTBOX_POLL_SECONDS: float = Field(default=1.0, gt=0, le=60)
    OUTBOX_BATCH_SIZE: int = Field(default=100, ge=1, le=10000)
    EVENT_RETRY_DELAYS_SECONDS: list[float] = Field(default_factory=lambda: [1.0, 5.0, 30.0, 120.0, 600.0])
    CRM_SECRET_KEYS: str | None = None

    @field_validator("EVENT_RETRY_DELAYS_SECONDS", mode="before")
    @classmethod
    def _split_delays(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [float(v) for v in value.split(",") if v.strip()]
        if isinstance(value, (int, float)):
            return [float(value)]
        return value

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


S = TypeVar("S", bound=ServiceSettings)

# where the validated settings travel inside the nameko config dict
SETTINGS_KEY = "SETTINGS"


def validate_settings(settings_cls: type[S], raw: Mapping[str, Any]) -> S:
    try:
        return settings_cls.model_validate(dict(raw))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "<root>"
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def load_settings(settings_cls: type[S], path: str | Path,
                  environ: Mapping[str, str] | None = None) -> tuple[S, dict[str, Any]]:
    """Load, substitute and validate; returns typed settings and the nameko config dict."""
    raw = load_yaml(path, environ)
    settings = validate_settings(settings_cls, raw)
    config = dict(raw)
    config.update(settings.model_dump())
    config["max_workers"] = settings.MAX_WORKERS
    config[SETTINGS_KEY] = settings
    return settings, config


def settings_of(config: Mapping[str, Any], settings_cls: type[S]) -> S:
    """The validated typed settings a process started with (``load_settings`` put them in its
    config). Dependency providers read their settings here, so each default is written once,
    in the settings class. A hand-built config (a test's ``{"AMQP_URI": ...}``) gets the
    class defaults for everything it does not name."""
    settings = config.get(SETTINGS_KEY)
    if isinstance(settings, settings_cls):
        return settings
    known = {}
    for key, value in config.items():
        field = settings_cls.model_fields.get(key)
        if field is not None:
            try:  # typed as the class says ("0.2" -> 0.2), where the plain type can tell
                value = TypeAdapter(field.annotation or Any).validate_python(value)
            except ValidationError:
                pass
            known[key] = value
    return settings_cls.model_construct(**known)
