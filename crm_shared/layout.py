"""Where the suite's processes live. Free of side effects (unlike the runner,
which monkey-patches on import), so tools such as ``make run`` can use it."""
from __future__ import annotations

from pathlib import Path

from crm_shared.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("auth", "users", "crm", "telephony", "mail", "onec")
ALL = SERVICES + ("gateway",)


def package_of(name: str) -> str:
    if name == "gateway":
        return "gateway"
    if name in SERVICES:
        return f"services.{name}"
    raise ConfigError(f"unknown service '{name}' (one of: {', '.join(ALL)})")
