"""Users routes (``/api/v1/users``): one RPC to the users service each,
carrying the caller taken from the verified access token."""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from gateway.entrypoints import api
from gateway.schemas_users import UserCreate, UserList, UserOut, UserQuery, UserUpdate
from gateway.tokens import caller


def query_dict(query: Any) -> dict[str, Any]:
    return query.model_dump(exclude_none=True) if query is not None else {}


class UsersRoutes:
    cluster: Any
    context: Any

    @api("GET", "/api/v1/users", query=UserQuery, response=UserList, tags=("users",),
         summary="List users (by name; deleted ones with include_deleted=true)")
    def list_users(self, request: Request, query: UserQuery) -> Any:
        return self.cluster.users.list_users(caller(self.context), query_dict(query))

    @api("POST", "/api/v1/users", body=UserCreate, response=UserOut, status=201, tags=("users",),
         summary="Create a user (needs users.manage)")
    def create_user(self, request: Request, body: UserCreate) -> Any:
        return self.cluster.users.create_user(caller(self.context), body.model_dump(mode="json"))

    @api("GET", "/api/v1/users/<string:user_id>", response=UserOut, tags=("users",), summary="A user")
    def get_user(self, request: Request, user_id: str) -> Any:
        return self.cluster.users.get_user(caller(self.context), user_id)

    @api("PATCH", "/api/v1/users/<string:user_id>", body=UserUpdate, response=UserOut, tags=("users",),
         summary="Change a user (needs users.manage); active=false blocks login and ends sessions")
    def update_user(self, request: Request, user_id: str, body: UserUpdate) -> Any:
        return self.cluster.users.update_user(caller(self.context), user_id,
                                              body.model_dump(mode="json", exclude_unset=True))

    @api("DELETE", "/api/v1/users/<string:user_id>", status=204, tags=("users",),
         summary="Delete a user (soft: their records keep showing them as deleted)")
    def delete_user(self, request: Request, user_id: str) -> Any:
        self.cluster.users.delete_user(caller(self.context), user_id)
        return 204, None
