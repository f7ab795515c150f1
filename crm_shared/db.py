"""SQLAlchemy 2 session per worker: committed when the entrypoint returns
(before its reply is sent), rolled back on error, closed always.

An entrypoint marked ``@read_only`` (one that only reads, in one statement
or a few that need no common snapshot: a page, a count, one record) gets a
session on a second pool whose connections are in autocommit and refuse
writes (``default_transaction_read_only``): its query is the only round
trip to PostgreSQL. On the ordinary pool a read costs four (the pre-ping
``SELECT 1``, ``BEGIN``, the query, ``COMMIT``). That pool skips the
pre-ping: a connection that died with its server (a PostgreSQL restart)
fails one request with 503 ``database_unavailable``, and SQLAlchemy then
replaces every older connection of the pool."""
from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any, Callable, TypeVar

import orjson
from nameko.extensions import DependencyProvider
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from crm_shared.config import ServiceSettings, settings_of
from crm_shared.errors import ServiceUnavailable

F = TypeVar("F", bound=Callable[..., Any])


READ_ONLY_ATTR = "crm_read_only"


def read_only(fn: F) -> F:
    """Marks an entrypoint that only reads: its session is on the autocommit, read-only pool."""
    setattr(fn, READ_ONLY_ATTR, True)
    return fn


def make_engine(url: str, pool_size: int = 5, application_name: str = "crm", reads_only: bool = False) -> Engine:
    # psycopg2 is the driver: psycogreen makes it cooperative under eventlet
    # (SQLAlchemy 2.1 would otherwise pick psycopg 3 for "postgresql://").
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    connect_args: dict[str, Any] = {"application_name": application_name, "connect_timeout": 5}
    if reads_only:
        connect_args["options"] = "-c default_transaction_read_only=on"
        # nothing to roll back on an autocommit connection returned to the pool
        return create_engine(parsed, pool_size=pool_size, max_overflow=0, pool_pre_ping=False,
                             pool_reset_on_return=None, isolation_level="AUTOCOMMIT", connect_args=connect_args,
                             json_deserializer=orjson.loads)
    return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                         connect_args=connect_args, json_deserializer=orjson.loads)


class Database(DependencyProvider):
    """Injects a ``Session``.

    nameko sends an entrypoint's reply *before* dependencies see
    ``worker_result``, so committing there would answer before the data is
    durable (and answer success when the commit fails). Instead the worker's
    method is wrapped at ``worker_setup`` to commit as it returns."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.read_engine: Engine | None = None
        self.sessionmaker: sessionmaker[Session] | None = None
        self.read_sessionmaker: sessionmaker[Session] | None = None
        self.sessions: dict[Any, Session] = {}

    def setup(self) -> None:
        settings = settings_of(self.container.config, ServiceSettings)
        assert settings.DATABASE_URL, "a service with a Database needs DATABASE_URL"
        self.engine = make_engine(settings.DATABASE_URL, settings.DB_POOL_SIZE, self.container.service_name)
        self.read_engine = make_engine(settings.DATABASE_URL, settings.DB_POOL_SIZE, self.container.service_name,
                                       reads_only=True)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessionmaker = sessionmaker(self.read_engine, expire_on_commit=False)

    def stop(self) -> None:
        for engine in (self.engine, self.read_engine):
            if engine is not None:
                engine.dispose()

    def kill(self) -> None:
        self.stop()

    def check(self) -> None:
        """Readiness: the database answers."""
        assert self.engine is not None
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def get_dependency(self, worker_ctx: Any) -> Session:
        assert self.sessionmaker is not None and self.read_sessionmaker is not None
        method = getattr(type(worker_ctx.service), worker_ctx.entrypoint.method_name, None)
        maker = self.read_sessionmaker if getattr(method, READ_ONLY_ATTR, False) else self.sessionmaker
        session = maker()
        self.sessions[worker_ctx] = session
        return session

    def worker_setup(self, worker_ctx: Any) -> None:
        service = worker_ctx.service
        name = worker_ctx.entrypoint.method_name
        method: Callable[..., Any] = getattr(service, name)
        session = self.sessions[worker_ctx]

        @functools.wraps(method)
        def committing(*args: Any, **kwargs: Any) -> Any:
            try:
                result = method(*args, **kwargs)
                session.commit()
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                raise ServiceUnavailable("the database connection was lost; retry",
                                         code="database_unavailable") from None
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


# -- bulk inserts ------------------------------------------------------------------

def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()  # bytea's text input form
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


_RECORDSET: dict[tuple[str, bool, tuple[str, ...] | None], str] = {}


def insert_rows(connection: Connection, table: Any, rows: list[dict[str, Any]],
                skip_conflicts: bool = False, columns: tuple[str, ...] | None = None) -> int:
    """Inserts ``rows`` (dicts of every column, or of ``columns``, by column name) with one
    statement and one parameter: the rows as JSON, unpacked by ``jsonb_to_recordset``. Thousands
    of rows cost one orjson dump and no per-value work in Python (SQLAlchemy's batched VALUES
    spends ~100 µs a row rendering parameters). Bytes travel as bytea's hex text. Answers how
    many rows were inserted."""
    if not rows:
        return 0
    key = (table.name, skip_conflicts, columns)
    sql = _RECORDSET.get(key)
    if sql is None:
        dialect = postgresql.dialect()
        chosen = [c for c in table.columns if columns is None or c.name in columns]
        names = ", ".join(f'"{c.name}"' for c in chosen)
        types = ", ".join(f'"{c.name}" {c.type.compile(dialect=dialect)}' for c in chosen)
        sql = (f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM '
               f"jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({types})"
               + (" ON CONFLICT DO NOTHING" if skip_conflicts else ""))
        _RECORDSET[key] = sql
    payload = orjson.dumps(rows, default=_json_default).decode()
    result = connection.execute(text(sql), {"rows": payload})
    return int(getattr(result, "rowcount", 0) or 0)
