"""Starts one service: ``python -m crm_shared.runner <service>``.

Loads and validates its configuration (a bad setting stops the process with
a message naming it), configures JSON logging, migrates its database under
the advisory lock, then runs the nameko container until SIGTERM/SIGINT."""
from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import psycogreen.eventlet  # noqa: E402

psycogreen.eventlet.patch_psycopg()

from crm_shared import codec  # noqa: E402

codec.install()

import gc  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from crm_shared.config import ConfigError, ServiceSettings, load_settings  # noqa: E402
from crm_shared.layout import ALL, ROOT, SERVICES, package_of  # noqa: E402
from crm_shared.logging import configure_logging  # noqa: E402

__all__ = ["ALL", "ROOT", "SERVICES", "ServiceSpec", "load_service", "main", "package_of"]

@dataclass
class ServiceSpec:
    name: str
    package: str
    service_cls: type
    settings: ServiceSettings
    config: dict[str, Any]
    migrations: Path | None


def load_service(name: str, environ: dict[str, str] | None = None) -> ServiceSpec:
    package = package_of(name)
    folder = ROOT / package.replace(".", "/")
    settings_module = importlib.import_module(f"{package}.settings")
    service_module = importlib.import_module(f"{package}.service")
    settings, config = load_settings(settings_module.Settings, folder / "config.yaml", environ)
    migrations = folder / "migrations"
    return ServiceSpec(name, package, service_module.SERVICE, settings, config,
                       migrations if migrations.is_dir() else None)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: python -m crm_shared.runner <{'|'.join(ALL)}>", file=sys.stderr)
        return 2
    try:
        spec = load_service(argv[0])
    except ConfigError as exc:
        print(f"{argv[0]}: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(spec.name, spec.settings.LOG_LEVEL, spec.settings.LOG_FORMAT)
    log = logging.getLogger("crm.runner")
    if spec.migrations and spec.settings.DATABASE_URL and spec.settings.MIGRATE_ON_START:
        from crm_shared.migrations import migrate

        migrate(spec.settings.DATABASE_URL, spec.migrations, spec.name)
    from nameko.cli.run import run

    # what start-up allocated (modules, config) is never freed: keeping it out of
    # the collector's full passes shortens their pauses
    gc.freeze()
    log.info("starting service", extra={"fields": {"pid": os.getpid()}})
    run([spec.service_cls], spec.config)
    log.info("service stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
