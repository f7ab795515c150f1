"""Org structure routes: departments, positions, roles and the rights catalogue."""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from gateway.entrypoints import api
from gateway.routes.users import query_dict
from gateway.schemas_users import (
    DepartmentCreate,
    DepartmentList,
    DepartmentOut,
    DepartmentQuery,
    DepartmentUpdate,
    PositionCreate,
    PositionList,
    PositionOut,
    PositionQuery,
    PositionUpdate,
    RightList,
    RoleCreate,
    RoleList,
    RoleOut,
    RoleQuery,
    RoleUpdate,
)
from gateway.tokens import caller


class OrgRoutes:
    cluster: Any
    context: Any

    # -- rights -----------------------------------------------------------------
    @api("GET", "/api/v1/rights", response=RightList, tags=("org",),
         summary="The rights catalogue: code, Russian title, scopes")
    def list_rights(self, request: Request) -> Any:
        return self.cluster.users.list_rights(caller(self.context))

    # -- departments ------------------------------------------------------------
    @api("GET", "/api/v1/departments", query=DepartmentQuery, response=DepartmentList, tags=("org",),
         summary="Departments (the tree as a flat list with parent_id)")
    def list_departments(self, request: Request, query: DepartmentQuery) -> Any:
        return self.cluster.users.list_departments(caller(self.context), query_dict(query))

    @api("POST", "/api/v1/departments", body=DepartmentCreate, response=DepartmentOut, status=201, tags=("org",),
         summary="Create a department (needs org.manage)")
    def create_department(self, request: Request, body: DepartmentCreate) -> Any:
        return self.cluster.users.create_department(caller(self.context), body.model_dump(exclude_unset=True))

    @api("GET", "/api/v1/departments/<string:department_id>", response=DepartmentOut, tags=("org",),
         summary="A department")
    def get_department(self, request: Request, department_id: str) -> Any:
        return self.cluster.users.get_department(caller(self.context), department_id)

    @api("PATCH", "/api/v1/departments/<string:department_id>", body=DepartmentUpdate, response=DepartmentOut,
         tags=("org",), summary="Rename or move a department (needs org.manage)")
    def update_department(self, request: Request, department_id: str, body: DepartmentUpdate) -> Any:
        return self.cluster.users.update_department(caller(self.context), department_id,
                                                    body.model_dump(exclude_unset=True))

    @api("DELETE", "/api/v1/departments/<string:department_id>", status=204, tags=("org",),
         summary="Delete an empty department (needs org.manage)")
    def delete_department(self, request: Request, department_id: str) -> Any:
        self.cluster.users.delete_department(caller(self.context), department_id)
        return 204, None

    # -- positions --------------------------------------------------------------
    @api("GET", "/api/v1/positions", query=PositionQuery, response=PositionList, tags=("org",),
         summary="Positions")
    def list_positions(self, request: Request, query: PositionQuery) -> Any:
        return self.cluster.users.list_positions(caller(self.context), query_dict(query))

    @api("POST", "/api/v1/positions", body=PositionCreate, response=PositionOut, status=201, tags=("org",),
         summary="Create a position in a department with a role (needs org.manage)")
    def create_position(self, request: Request, body: PositionCreate) -> Any:
        return self.cluster.users.create_position(caller(self.context), body.model_dump(exclude_unset=True))

    @api("GET", "/api/v1/positions/<string:position_id>", response=PositionOut, tags=("org",),
         summary="A position")
    def get_position(self, request: Request, position_id: str) -> Any:
        return self.cluster.users.get_position(caller(self.context), position_id)

    @api("PATCH", "/api/v1/positions/<string:position_id>", body=PositionUpdate, response=PositionOut,
         tags=("org",), summary="Change a position (needs org.manage)")
    def update_position(self, request: Request, position_id: str, body: PositionUpdate) -> Any:
        return self.cluster.users.update_position(caller(self.context), position_id,
                                                  body.model_dump(exclude_unset=True))

    @api("DELETE", "/api/v1/positions/<string:position_id>", status=204, tags=("org",),
         summary="Delete a position nobody holds (needs org.manage)")
    def delete_position(self, request: Request, position_id: str) -> Any:
        self.cluster.users.delete_position(caller(self.context), position_id)
        return 204, None

    # -- roles ------------------------------------------------------------------
    @api("GET", "/api/v1/roles", query=RoleQuery, response=RoleList, tags=("org",), summary="Roles")
    def list_roles(self, request: Request, query: RoleQuery) -> Any:
        return self.cluster.users.list_roles(caller(self.context), query_dict(query))

    @api("POST", "/api/v1/roles", body=RoleCreate, response=RoleOut, status=201, tags=("org",),
         summary="Create a role (needs org.manage)")
    def create_role(self, request: Request, body: RoleCreate) -> Any:
        return self.cluster.users.create_role(caller(self.context), body.model_dump(exclude_unset=True))

    @api("GET", "/api/v1/roles/<string:role_id>", response=RoleOut, tags=("org",), summary="A role")
    def get_role(self, request: Request, role_id: str) -> Any:
        return self.cluster.users.get_role(caller(self.context), role_id)

    @api("PATCH", "/api/v1/roles/<string:role_id>", body=RoleUpdate, response=RoleOut, tags=("org",),
         summary="Rename a role or change its rights (needs org.manage); effective on the next request")
    def update_role(self, request: Request, role_id: str, body: RoleUpdate) -> Any:
        return self.cluster.users.update_role(caller(self.context), role_id, body.model_dump(exclude_unset=True))

    @api("DELETE", "/api/v1/roles/<string:role_id>", status=204, tags=("org",),
         summary="Delete a role no position uses (needs org.manage)")
    def delete_role(self, request: Request, role_id: str) -> Any:
        self.cluster.users.delete_role(caller(self.context), role_id)
        return 204, None
