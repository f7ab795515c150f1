"""DependencyProviders for the mail service's own I/O (beyond the shared
database, outbox and metrics providers in ``crm_shared``)."""
from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from nameko.extensions import DependencyProvider
from sqlalchemy.orm import Session, sessionmaker

from crm_shared.db import Database


class SessionFactory(DependencyProvider):
    """``self.sessions()``: a new session on the service's database, for the polls that run side by
    side in one worker (each needs its own transaction)."""

    def get_dependency(self, worker_ctx: Any) -> "sessionmaker[Session]":
        database = next(d for d in self.container.dependencies if isinstance(d, Database))
        assert database.sessionmaker is not None
        return database.sessionmaker


class ReplicaId(DependencyProvider):
    """Who holds a lease: this process, uniquely (host, pid and a random part)."""

    def setup(self) -> None:
        self.value = f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def get_dependency(self, worker_ctx: Any) -> str:
        return self.value
