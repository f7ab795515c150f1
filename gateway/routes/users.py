"""Users routes (``/api/v1/users``) and the audit journal (``/api/v1/journal``):
one RPC to the users service each, carrying the caller taken from the
verified access token."""
from __future__ import annotations

from contracts.users import JournalEntryOut, JournalList, JournalQuery, UserCreate, UserOut, UserQuery, UserUpdate
from gateway.resources import Area, Resource

UsersRoutes = Area("users", tag="users", right_prefix=False).routes(
    Resource("users", "user", UserOut, query=UserQuery, create=UserCreate, update=UserUpdate,
             actions=("list", "create", "read", "update", "delete"), summaries={
                 "list": "List users (by name; deleted ones with include_deleted=true)",
                 "create": "Create a user (needs users.manage)",
                 "update": "Change a user (needs users.manage); active=false blocks login and ends sessions",
                 "delete": "Delete a user (soft: their records keep showing them as deleted)"}),
    name="UsersRoutes",
)

JournalRoutes = Area("users", tag="journal", right_prefix=False).routes(
    Resource("journal", "journal_entry", JournalEntryOut, query=JournalQuery, list_model=JournalList,
             actions=("list",), summaries={"list": "Who changed what and when, newest first (needs journal.read)"}),
    name="JournalRoutes",
)
