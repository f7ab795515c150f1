"""Org structure routes: departments, positions, roles and the rights catalogue."""
from __future__ import annotations

from contracts.users import (
    DepartmentCreate,
    DepartmentOut,
    DepartmentQuery,
    DepartmentUpdate,
    PositionCreate,
    PositionOut,
    PositionQuery,
    PositionUpdate,
    RightOut,
    RoleCreate,
    RoleOut,
    RoleQuery,
    RoleUpdate,
)
from gateway.resources import Area, Resource

WRITES = ("list", "create", "read", "update", "delete")

OrgRoutes = Area("users", tag="org", right_prefix=False).routes(
    Resource("rights", "right", RightOut, actions=("list",),
             summaries={"list": "The rights catalogue: code, Russian title, scopes"}),
    Resource("departments", "department", DepartmentOut, query=DepartmentQuery, create=DepartmentCreate,
             update=DepartmentUpdate, actions=WRITES, summaries={
                 "list": "Departments (the tree as a flat list with parent_id)",
                 "create": "Create a department (needs org.manage)",
                 "update": "Rename or move a department (needs org.manage)",
                 "delete": "Delete an empty department (needs org.manage; 409 while it has members or children)"}),
    Resource("positions", "position", PositionOut, query=PositionQuery, create=PositionCreate,
             update=PositionUpdate, actions=WRITES, summaries={
                 "create": "Create a position in a department with a role (needs org.manage)",
                 "update": "Change a position (needs org.manage)",
                 "delete": "Delete a position nobody holds (needs org.manage)"}),
    Resource("roles", "role", RoleOut, query=RoleQuery, create=RoleCreate, update=RoleUpdate, actions=WRITES,
             summaries={"create": "Create a role (needs org.manage)",
                        "update": "Rename a role or change its rights (needs org.manage); effective on the next "
                                  "request",
                        "delete": "Delete a role no position uses (needs org.manage)"}),
    name="OrgRoutes",
)
