"""The audit journal route (needs journal.read)."""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from gateway.entrypoints import api
from gateway.routes.users import query_dict
from gateway.schemas_users import JournalList, JournalQuery
from gateway.tokens import caller


class JournalRoutes:
    cluster: Any
    context: Any

    @api("GET", "/api/v1/journal", query=JournalQuery, response=JournalList, tags=("journal",),
         summary="Who changed what and when, newest first (needs journal.read)")
    def list_journal(self, request: Request, query: JournalQuery) -> Any:
        return self.cluster.users.list_journal(caller(self.context), query_dict(query))
