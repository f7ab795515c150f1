"""SQLAlchemy 2 session per worker: committed when the entrypoint returns
(before its reply is sent), rolled back on error, closed always."""
from __future__ import annotations

import functools
from typing import Any, Callable

from nameko.extensions import DependencyProvider
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from crm_shared.config import ServiceSettings, settings_of


def make_engine(url: str, pool_size: int = 5, application_name: str = "crm") -> Engine:
    # psycopg2 is the driver: psycogreen makes it cooperative under eventlet
    # (SQLAlchemy 2.1 would otherwise pick psycopg 3 for "postgresql://").
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"application_name": application_name, "connect_timeout": 5},
    )


class Database(DependencyProvider):
    """Injects a ``Session``.

    nameko sends an entrypoint's reply *before* dependencies see
    ``worker_result``, so committing there would answer before the data is
    durable (and answer success when the commit fails). Instead the worker's
    method is wrapped at ``worker_setup`` to commit as it returns."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.sessionmaker: sessionmaker[Session] | None = None
        self.sessions: dict[Any, Session] = {}

    def setup(self) -> None:
        settings = settings_of(self.container.config, ServiceSettings)
        assert settings.DATABASE_URL, "a service with a Database needs DATABASE_URL"
        self.engine = make_engine(settings.DATABASE_URL, settings.DB_POOL_SIZE, self.container.service_name)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.dispose()

    def kill(self) -> None:
        self.stop()

    def check(self) -> None:
        """Readiness: the database answers."""
        assert self.engine is not None
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def get_dependency(self, worker_ctx: Any) -> Session:
        assert self.sessionmaker is not None
        session = self.sessionmaker()
        self.sessions[worker_ctx] = session
        return session

    def worker_setup(self, worker_ctx: Any) -> None:
        service = worker_ctx.service
        name = worker_ctx.entrypoint.method_name
        method: Callable[..., Any] = getattr(service, name)
        session = self.sessions[worker_ctx]

        @functools.wraps(method)
        def committing(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            session.commit()
            return result

        # an instance attribute: the service instance belongs to this worker only
        setattr(service, name, committing)

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        session = self.sessions.pop(worker_ctx, None)
        if session is None:
            return
        try:
            if exc_info is not None:
                session.rollback()
        finally:
            session.close()

    def worker_teardown(self, worker_ctx: Any) -> None:
        session = self.sessions.pop(worker_ctx, None)
        if session is not None:
            session.close()
