"""Users routes (``/api/v1/users``) and the audit journal (``/api/v1/journal``):
one RPC to the users service each, carrying the caller taken from the
verified access token."""
from __future__ import annotations

from typing import Any

from contracts.users import JournalEntryOut, JournalList, JournalQuery, UserCreate, UserOut, UserQuery, UserUpdate
from gateway.resources import Area, Resource


def sessions_end(route: Any, who: dict[str, str], user_id: str, body: dict[str, Any] | None,
                 answer: dict[str, Any] | None) -> None:
    """Deactivating, deleting or setting a password ends the user's sessions: this gateway refuses
    their tokens before it answers; the others hear users' event (``gateway.routes.auth``) and auth
    revokes the sessions themselves."""
    ended = body is None or "password" in body or (answer is not None and answer.get("active") is False)
    if ended:
        route.token_state.end_user(who["tenant_id"], str(user_id))

UsersRoutes = Area("users", tag="users", right_prefix=False).routes(
    Resource("users", "user", UserOut, query=UserQuery, create=UserCreate, update=UserUpdate,
             actions=("list", "create", "read", "update", "delete"), summaries={
                 "list": "List users (by name; deleted ones with include_deleted=true)",
                 "create": "Create a user (needs users.manage)",
                 "update": "Change a user (needs users.manage); active=false blocks login and ends sessions",
                 "delete": "Delete a user (soft: their records keep showing them as deleted)"},
             after={"update": sessions_end, "delete": sessions_end}),
    name="UsersRoutes",
)

JournalRoutes = Area("users", tag="journal", right_prefix=False).routes(
    Resource("journal", "journal_entry", JournalEntryOut, query=JournalQuery, list_model=JournalList,
             actions=("list",), summaries={"list": "Who changed what and when, newest first (needs journal.read)"}),
    name="JournalRoutes",
)
