"""The principal (effective rights) of a user, served from a per-process cache.

A ``TenantSnapshot`` holds a tenant's org structure (department tree,
positions, roles, who holds which position, user profiles) as plain dicts;
principals are computed from it on first use and memoised. Any change to a
tenant drops its snapshot: locally right after the writing transaction
commits (so the next request sees it), in other replicas when the
``principal_changed`` event arrives. A generation number per tenant keeps a
snapshot built concurrently with a change from being stored stale."""
from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_shared.metrics import METRICS
from services.users import rights as R


@dataclass
class Profile:
    login: str
    full_name: str
    email: str | None
    timezone: str
    active: bool
    deleted: bool
    sip_enabled: bool = False


@dataclass
class TenantSnapshot:
    tenant_id: str
    parents: dict[str, str | None] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    position_department: dict[str, str] = field(default_factory=dict)
    position_role: dict[str, str] = field(default_factory=dict)
    role_rights: dict[str, dict[str, str]] = field(default_factory=dict)
    user_positions: dict[str, list[str]] = field(default_factory=dict)
    department_users: dict[str, set[str]] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    _subtrees: dict[str, frozenset[str]] = field(default_factory=dict)
    _principals: dict[str, dict[str, Any]] = field(default_factory=dict)
    _rights: dict[tuple[str, ...], dict[str, str]] = field(default_factory=dict)
    _scopes: dict[frozenset[str], tuple[list[str], list[str]]] = field(default_factory=dict)

    @classmethod
    def build(cls, tenant_id: str, departments: Iterable[tuple[Any, Any]], positions: Iterable[tuple[Any, Any, Any]],
              roles: Iterable[tuple[Any, dict[str, str]]], holdings: Iterable[tuple[Any, Any]],
              users: Iterable[tuple[Any, Profile]]) -> "TenantSnapshot":
        snap = cls(tenant_id)
        for dept_id, parent_id in departments:
            d, p = str(dept_id), (str(parent_id) if parent_id is not None else None)
            snap.parents[d] = p
            snap.children.setdefault(d, [])
            if p is not None:
                snap.children.setdefault(p, []).append(d)
        for pos_id, dept_id, role_id in positions:
            snap.position_department[str(pos_id)] = str(dept_id)
            snap.position_role[str(pos_id)] = str(role_id)
        for role_id, role_rights in roles:
            snap.role_rights[str(role_id)] = dict(role_rights or {})
        for user_id, pos_id in holdings:
            u, p = str(user_id), str(pos_id)
            snap.user_positions.setdefault(u, []).append(p)
            dept = snap.position_department.get(p)
            if dept is not None:
                snap.department_users.setdefault(dept, set()).add(u)
        for user_id, profile in users:
            snap.profiles[str(user_id)] = profile
        return snap

    def subtree(self, dept_id: str) -> frozenset[str]:
        """The department and all its descendants."""
        cached = self._subtrees.get(dept_id)
        if cached is not None:
            return cached
        seen: set[str] = set()
        stack = [dept_id]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack.extend(self.children.get(current, ()))
        result = frozenset(seen)
        self._subtrees[dept_id] = result
        return result

    def _rights_of(self, positions: tuple[str, ...]) -> dict[str, str]:
        cached = self._rights.get(positions)
        if cached is None:
            cached = R.merge(self.role_rights.get(self.position_role.get(p, ""), {}) for p in positions)
            self._rights[positions] = cached
        return cached

    def _scope_of(self, positions: tuple[str, ...]) -> tuple[list[str], list[str]]:
        """My departments with their descendants, and the users holding a position in them.
        Shared by every user with the same positions: colleagues do not each keep a copy."""
        homes = frozenset(d for d in (self.position_department.get(p) for p in positions) if d is not None)
        cached = self._scopes.get(homes)
        if cached is None:
            departments: set[str] = set()
            for dept in homes:
                departments |= self.subtree(dept)
            colleagues: set[str] = set()
            for dept in departments:
                colleagues |= self.department_users.get(dept, set())
            cached = (sorted(departments), sorted(colleagues))
            self._scopes[homes] = cached
        return cached

    def principal(self, user_id: str) -> dict[str, Any] | None:
        """The user's principal (shared, never to be mutated); None for an unknown user."""
        cached = self._principals.get(user_id)
        if cached is not None:
            return cached
        profile = self.profiles.get(user_id)
        if profile is None:
            return None
        positions = tuple(sorted(self.user_positions.get(user_id, ())))
        department_ids, department_user_ids = self._scope_of(positions)
        principal = {
            "tenant_id": self.tenant_id,
            "user_id": user_id,
            "login": profile.login,
            "full_name": profile.full_name,
            "email": profile.email,
            "timezone": profile.timezone,
            "active": profile.active and not profile.deleted,
            "sip_enabled": profile.sip_enabled,
            "rights": self._rights_of(positions),
            "department_ids": department_ids,
            "department_user_ids": department_user_ids,
        }
        self._principals[user_id] = principal
        return principal


_SNAPSHOT_SQL = {
    # ids come back as text: converting thousands of UUIDs to objects and back costs more than the queries
    "departments": "SELECT id::text, parent_id::text FROM departments WHERE tenant_id = :t",
    "positions": "SELECT id::text, department_id::text, role_id::text FROM positions WHERE tenant_id = :t",
    "roles": "SELECT id::text, rights FROM roles WHERE tenant_id = :t",
    "holdings": "SELECT user_id::text, position_id::text FROM user_positions WHERE tenant_id = :t",
    "users": "SELECT id::text, login, full_name, email, timezone, active, deleted_at IS NOT NULL, "
             "sip_enabled FROM users WHERE tenant_id = :t",
}


def load_snapshot(session: Session, tenant_id: str) -> TenantSnapshot:
    """Five indexed scans of one tenant's rows (all lead with ``tenant_id``)."""
    conn = session.connection()
    rows = {name: conn.execute(sa.text(sql), {"t": tenant_id}).all() for name, sql in _SNAPSHOT_SQL.items()}
    return TenantSnapshot.build(
        tenant_id, rows["departments"], rows["positions"], rows["roles"], rows["holdings"],
        [(r[0], Profile(r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]))) for r in rows["users"]],
    )


def _lookups() -> Any:
    return METRICS.counter("crm_users_principal_cache_total",
                           "Principal cache lookups by result (hit, miss = snapshot built).", ("result",))


def _invalidations() -> Any:
    return METRICS.counter("crm_users_principal_invalidations_total",
                           "Tenant snapshots dropped from the principal cache, by cause.", ("cause",))


DIRTY_KEY = "users_dirty_tenants"


class PrincipalCache:
    """Tenant snapshots, least recently used first out."""

    def __init__(self, max_tenants: int = 500,
                 loader: Callable[[Session, str], TenantSnapshot] = load_snapshot) -> None:
        self.max_tenants = max_tenants
        self.loader = loader
        self._snapshots: OrderedDict[str, TenantSnapshot] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._global_generation = 0
        self._lock = threading.Lock()
        # principal_changed events this process recorded: it dropped the tenant
        # at commit already, so their echo need not drop a freshly built snapshot
        self._own_events: deque[str] = deque(maxlen=10_000)
        self._own_event_ids: set[str] = set()

    def note_own_event(self, event_id: str) -> None:
        if len(self._own_events) == self._own_events.maxlen:
            self._own_event_ids.discard(self._own_events[0])
        self._own_events.append(event_id)
        self._own_event_ids.add(event_id)

    def is_own_event(self, event_id: str) -> bool:
        return event_id in self._own_event_ids

    def _generation(self, tenant_id: str) -> tuple[int, int]:
        return self._global_generation, self._generations.get(tenant_id, 0)

    def snapshot(self, session: Session, tenant_id: str) -> TenantSnapshot:
        # a transaction that has changed this tenant sees its own uncommitted
        # state: build from it, but never store it
        if tenant_id in session.info.get(DIRTY_KEY, ()):
            return self.loader(session, tenant_id)
        with self._lock:
            snap = self._snapshots.get(tenant_id)
            if snap is not None:
                self._snapshots.move_to_end(tenant_id)
        if snap is not None:
            _lookups().labels("hit").inc()
            return snap
        _lookups().labels("miss").inc()
        generation = self._generation(tenant_id)
        snap = self.loader(session, tenant_id)
        with self._lock:
            if self._generation(tenant_id) == generation:
                self._snapshots[tenant_id] = snap
                while len(self._snapshots) > self.max_tenants:
                    self._snapshots.popitem(last=False)
        return snap

    def principal(self, session: Session, tenant_id: str, user_id: str) -> dict[str, Any] | None:
        return self.snapshot(session, tenant_id).principal(user_id)

    def invalidate(self, tenant_id: str | None, cause: str = "local") -> None:
        """Drops a tenant's snapshot (every tenant's with ``None``)."""
        with self._lock:
            if tenant_id is None:
                self._global_generation += 1
                self._snapshots.clear()
                self._generations.clear()
            else:
                self._generations[tenant_id] = self._generations.get(tenant_id, 0) + 1
                self._snapshots.pop(tenant_id, None)
        _invalidations().labels(cause).inc()

    def __len__(self) -> int:
        return len(self._snapshots)


def mark_changed(session: Session, cache: PrincipalCache, tenant_id: str) -> None:
    """Records that this transaction changes ``tenant_id``'s org data; the
    cache drops the tenant when (and only if) the transaction commits."""
    dirty: set[str] | None = session.info.get(DIRTY_KEY)
    if dirty is None:
        dirty = set()
        session.info[DIRTY_KEY] = dirty

        def after_commit(sess: Session) -> None:
            for tenant in sess.info.pop(DIRTY_KEY, set()):
                cache.invalidate(tenant, "local")

        def after_rollback(sess: Session) -> None:
            sess.info.pop(DIRTY_KEY, None)

        sa.event.listen(session, "after_commit", after_commit, once=True)
        sa.event.listen(session, "after_soft_rollback", after_rollback, once=True)
    dirty.add(tenant_id)
