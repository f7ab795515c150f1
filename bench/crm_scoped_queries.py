"""Rights-filtered CRM queries at scale: one tenant with 100,000 contacts and
20,000 counterparties owned by 500 users in 50 departments (a 3-level tree:
5 × 3 × 2), next to a second tenant with 30,000 contacts of its own.

The whole suite runs (auth, users, crm, … and the gateway); the tenant, its
departments, positions and users are made through the users service (the
principal is the real one); the CRM records are bulk-loaded with SQL
(``INSERT … SELECT generate_series``) in the shape the service writes them
(search text, normalised match keys).

Measured, at the service (one RPC, ``crm.list_records``) and through the
gateway (``GET /api/v1/contacts`` with a bearer token): a page of 50
contacts under department scope (a mid-level manager: 3 departments, 30
users, ~6 % of the rows; and a top-level one: 10 departments, 100 users),
deep pages following ``next_cursor``, and a search by a 6-digit phone
fragment under department scope. EXPLAIN (ANALYZE, BUFFERS) plans of the
exact SQL the service runs are captured for each query."""
from __future__ import annotations

import os
import time
import uuid
from typing import Any, Callable

import eventlet
import requests
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy.orm import Session

from bench.common import infrastructure, new_tenant_admin, percentiles, start
from crm_shared.db import make_engine
from crm_shared.layout import ROOT, SERVICES, package_of
from crm_shared.migrations import migrate
from crm_shared.testing import service_config

CONTACTS = 100_000
COUNTERPARTIES = 20_000
NOISE_CONTACTS = 30_000
TREE = (5, 3, 2)           # departments per parent at each level: 5 + 15 + 30 = 50
USERS_PER_DEPARTMENT = 10  # 500 users
CALLS = 200
PASSWORD = "Bench-pass-2026x"

SURNAMES = ["Иванов", "Петров", "Сидоров", "Смирнов", "Кузнецов", "Попов", "Васильев", "Соколов", "Михайлов",
            "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов",
            "Козлов", "Степанов"]
NAMES = ["Александр", "Алексей", "Андрей", "Дмитрий", "Евгений", "Иван", "Максим", "Михаил", "Николай",
         "Олег", "Павел", "Сергей", "Юрий", "Анна", "Елена", "Мария", "Ольга", "Татьяна", "Наталья", "Ирина"]


def _sql_array(values: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


# -- the suite ------------------------------------------------------------------------

class Suite:
    def __init__(self, amqp_uri: str, dbs: Any) -> None:
        os.environ.setdefault("AUTH_SIGNING_KEYS", __import__("services.auth.tokens", fromlist=["x"])
                              .generate_key_spec("bench"))
        self.containers: list[Any] = []
        self.urls: dict[str, str] = {}
        for name in SERVICES:  # one after another: alembic's context is process-global
            url = dbs.create(name)
            self.urls[name] = url
            migrate(url, ROOT / package_of(name).replace(".", "/") / "migrations", name)
        for name in SERVICES:
            _, config = service_config(name, amqp_uri, self.urls[name], LOG_LEVEL="WARNING",
                                       CRM_MAX_WORKERS="10")
            module = __import__(f"{package_of(name)}.service", fromlist=["SERVICE"])
            self.containers.append(start(module.SERVICE, config))
        _, gateway_config = service_config("gateway", amqp_uri, LOG_LEVEL="WARNING")
        gateway = start(__import__("gateway.service", fromlist=["SERVICE"]).SERVICE, gateway_config)
        self.containers.append(gateway)
        self.base = f"http://{gateway.config['WEB_SERVER_ADDRESS'].replace('0.0.0.0', '127.0.0.1')}"
        self.operator_token = gateway.config["CRM_OPERATOR_TOKEN"]

    def stop(self) -> None:
        pool = eventlet.GreenPool()
        for container in reversed(self.containers):
            pool.spawn(container.stop)
        pool.waitall()


def set_nodelay(suite: Suite) -> None:
    """TCP_NODELAY on the gateway's listening socket (in this process only)."""
    import socket

    from nameko.web.server import WebServer

    gateway = suite.containers[-1]
    servers = {ext for ep in gateway.entrypoints for ext in [getattr(ep, "server", None)]
               if isinstance(ext, WebServer)}
    for server in servers:
        server._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def login(base: str, product_code: str, login_name: str, password: str) -> requests.Session:
    resp = requests.post(f"{base}/api/v1/auth/login", timeout=30,
                         json={"product_code": product_code, "login": login_name, "password": password})
    resp.raise_for_status()
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
    return http


def build_org(suite: Suite, proxy: Any, amqp_uri: str) -> dict[str, Any]:
    """The tenant (POST /tenants), then 50 departments, their positions and 500 users by RPC."""
    admin_http, created = new_tenant_admin(suite.base, suite.operator_token, "ООО Бенчмарк")
    me = admin_http.get(f"{suite.base}/api/v1/auth/me", timeout=30).json()
    tenant_id, admin = me["tenant_id"], {"tenant_id": me["tenant_id"], "user_id": me["user"]["id"]}
    users = proxy.users
    roles = {r["builtin"]: r["id"] for r in users.list_roles(admin, {})["items"]}
    root = next(d["id"] for d in users.list_departments(admin, {})["items"] if d["is_root"])
    levels: list[list[str]] = [[root]]
    for depth, per_parent in enumerate(TREE, start=1):
        levels.append([users.create_department(admin, {"name": f"Отдел {depth}.{p}.{i}", "parent_id": parent})["id"]
                       for p, parent in enumerate(levels[-1]) for i in range(per_parent)])
    departments = [d for level in levels[1:] for d in level]
    staff: dict[str, list[str]] = {}
    managers: dict[str, str] = {}

    def make_users(dept: str) -> None:
        # a standalone proxy serves one greenthread at a time: one each
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=120) as own:
            fill_department(own.users, dept)

    def fill_department(users: Any, dept: str) -> None:
        employee = users.create_position(admin, {"title": "Сотрудник", "department_id": dept,
                                                 "role_id": roles["employee"]})["id"]
        manager = users.create_position(admin, {"title": "Руководитель", "department_id": dept,
                                                "role_id": roles["manager"]})["id"]
        staff[dept] = []
        for n in range(USERS_PER_DEPARTMENT):
            login_name = f"u{departments.index(dept):02d}{n}"
            user = users.create_user(admin, {"full_name": f"Сотрудник {login_name}", "login": login_name,
                                             "password": PASSWORD, "password_confirm": PASSWORD,
                                             "position_ids": [manager if n == 0 else employee]})
            staff[dept].append(user["id"])
            if n == 0:
                managers[dept] = login_name

    pool = eventlet.GreenPool(6)
    for dept in departments:
        pool.spawn(make_users, dept)
    pool.waitall()
    return {"tenant_id": tenant_id, "product_code": created["product_code"], "admin": admin,
            "levels": levels, "staff": staff, "managers": managers}


# -- bulk data -------------------------------------------------------------------------

def bulk_load(url: str, tenant_id: str, owners: list[str], contacts: int, counterparties: int) -> None:
    """Counterparties and contacts as the service writes them: search text (lower case, ё → е, phone
    digits as entered and in E.164, e-mails) and match keys (E.164 phones, lower-case e-mails)."""
    engine = make_engine(url, pool_size=1)
    surnames, names = _sql_array(SURNAMES), _sql_array(NAMES)
    owners_sql = "ARRAY[" + ",".join(f"'{o}'::uuid" for o in owners) + "]"
    national = "(9000000000 + (i::bigint * 104729) % 1000000000)::text"
    with engine.begin() as conn:
        conn.execute(sa.text(f"""
            INSERT INTO counterparties (tenant_id, id, responsible_id, created_by, created_at, updated_at, search,
                                        kind, name, inn, phones, emails, addresses, active)
            SELECT :t, gen_random_uuid(), o, o, c, c, lower(replace(n, 'ё', 'е')), 'legal', n, NULL, '[]', '[]', '[]',
                   true
            FROM (SELECT i, ({owners_sql})[1 + (i * 7) % {len(owners)}] AS o,
                         'ООО «' || ({surnames})[1 + i % 20] || ' и партнёры ' || i || '»' AS n,
                         now() - make_interval(secs => i) AS c
                  FROM generate_series(1, :n) AS i) s
        """), {"t": tenant_id, "n": counterparties})
        conn.execute(sa.text(f"""
            INSERT INTO contacts (tenant_id, id, responsible_id, created_by, created_at, updated_at, search,
                                  full_name, phones, emails)
            SELECT :t, gen_random_uuid(), o, o, c, c,
                   lower(replace(fn, 'ё', 'е')) || ' 8' || ph || ' 7' || ph || ' ' || em,
                   fn,
                   jsonb_build_array('8 (' || substr(ph, 1, 3) || ') ' || substr(ph, 4, 3) || '-' ||
                                     substr(ph, 7, 2) || '-' || substr(ph, 9, 2)),
                   jsonb_build_array(em)
            FROM (SELECT i, ({owners_sql})[1 + (i * 13) % {len(owners)}] AS o,
                         ({surnames})[1 + i % 20] || ' ' || ({names})[1 + (i / 20) % 20] || ' ' || i AS fn,
                         {national} AS ph, 'client' || i || '@example.test' AS em,
                         now() - make_interval(secs => i) AS c
                  FROM generate_series(1, :n) AS i) s
        """), {"t": tenant_id, "n": contacts})
        conn.execute(sa.text(r"""
            INSERT INTO match_keys (tenant_id, value, entity, record_id)
            SELECT tenant_id, '+7' || substr(regexp_replace(phones ->> 0, '\D', '', 'g'), 2), 'contact', id
            FROM contacts WHERE tenant_id = :t
            UNION ALL
            SELECT tenant_id, emails ->> 0, 'contact', id FROM contacts WHERE tenant_id = :t
        """), {"t": tenant_id})
    engine.dispose()


def analyze(url: str) -> None:
    engine = make_engine(url, pool_size=1)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


# -- measuring ---------------------------------------------------------------------------

def timed(fn: Callable[[int], Any], n: int = CALLS) -> dict[str, float]:
    fn(0)  # warm
    samples = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - t)
    return percentiles(samples)


def explain(url: str, tenant_id: str, principal: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
    """The exact SQL the service runs for ``query`` (captured from the domain code), explained."""
    from services.crm import records
    from services.crm.kinds import KINDS
    from services.crm.work import Work

    engine = make_engine(url, pool_size=1)
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM contacts" in statement:
            captured.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    with Session(engine) as session:
        records.list_records(Work(session, tenant_id, None, principal), KINDS["contacts"], query)
    sa.event.remove(engine, "before_cursor_execute", capture)
    statement, params = captured[0]
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur: Any = raw.cursor()
        try:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, params)
            plan = [row[0] for row in cur.fetchall()]
            sql = cur.mogrify(statement, params).decode()
        finally:
            cur.close()
    engine.dispose()
    return {"sql": " ".join(sql.split()), "plan": plan}


def run() -> dict[str, Any]:
    started = time.perf_counter()
    with infrastructure() as (uri, dbs):
        suite = Suite(uri, dbs)
        try:
            with ClusterRpcProxy({"AMQP_URI": uri}, timeout=120) as proxy:
                t0 = time.perf_counter()
                org = build_org(suite, proxy, uri)
                org_seconds = time.perf_counter() - t0
                owners = [u for dept in org["staff"].values() for u in dept]
                crm_url = suite.urls["crm"]
                t0 = time.perf_counter()
                bulk_load(crm_url, org["tenant_id"], owners, CONTACTS, COUNTERPARTIES)
                noise_owners = [str(uuid.uuid4()) for _ in range(100)]
                bulk_load(crm_url, "bench-noise-tenant", noise_owners, NOISE_CONTACTS, 2000)
                analyze(crm_url)
                load_seconds = time.perf_counter() - t0
                return measure(suite, proxy, org, crm_url, owners) | {
                    "setup_seconds": {"org_through_users_service": round(org_seconds, 1),
                                      "bulk_load_and_analyze": round(load_seconds, 1)},
                    "total_seconds": round(time.perf_counter() - started, 1)}
        finally:
            suite.stop()


def measure(suite: Suite, proxy: Any, org: dict[str, Any], crm_url: str, owners: list[str]) -> dict[str, Any]:
    levels, staff, managers = org["levels"], org["staff"], org["managers"]
    mid_dept, top_dept = levels[2][0], levels[1][0]
    mid_login, top_login = managers[mid_dept], managers[top_dept]
    tenant_id = org["tenant_id"]
    mid = {"tenant_id": tenant_id, "user_id": staff[mid_dept][0]}
    top = {"tenant_id": tenant_id, "user_id": staff[top_dept][0]}
    employee = {"tenant_id": tenant_id, "user_id": staff[mid_dept][1]}
    mid_principal = proxy.users.get_principal(tenant_id, mid["user_id"])
    top_principal = proxy.users.get_principal(tenant_id, top["user_id"])
    crm = proxy.crm

    engine = make_engine(crm_url, pool_size=1)
    with engine.connect() as conn:
        in_scope = conn.execute(sa.text(
            "SELECT count(*) FROM contacts WHERE tenant_id = :t AND responsible_id = ANY(CAST(:ids AS uuid[]))"),
            {"t": tenant_id, "ids": mid_principal["department_user_ids"]}).scalar()
        numbers = [r[0] for r in conn.execute(sa.text(
            "SELECT substr(regexp_replace(phones ->> 0, '\\D', '', 'g'), 2) FROM contacts "
            "WHERE tenant_id = :t AND responsible_id = ANY(CAST(:ids AS uuid[])) ORDER BY random() LIMIT 400"),
            {"t": tenant_id, "ids": mid_principal["department_user_ids"]})]
    engine.dispose()
    fragments = [n[3:9] for n in numbers]  # 6 digits from the middle of a number in scope ("916123…")

    def deep_cursor(caller: dict[str, str], pages: int) -> str:
        cursor = None
        for _ in range(pages):
            cursor = crm.list_records(caller, "contacts", {"limit": 50, **({"cursor": cursor} if cursor else {})}
                                      )["next_cursor"]
        assert cursor
        return cursor

    mid_deep = deep_cursor(mid, 40)
    rpc = {
        "department_scope_first_page_30_users": timed(lambda i: crm.list_records(mid, "contacts", {"limit": 50})),
        "department_scope_page_41_via_cursor": timed(
            lambda i: crm.list_records(mid, "contacts", {"limit": 50, "cursor": mid_deep})),
        "department_scope_first_page_100_users": timed(lambda i: crm.list_records(top, "contacts", {"limit": 50})),
        "department_scope_count": timed(lambda i: crm.count_records(mid, "contacts", {}), 50),
        "department_scope_phone_fragment_search": timed(
            lambda i: crm.list_records(mid, "contacts", {"q": fragments[i % len(fragments)], "limit": 50})),
        "own_scope_first_page": timed(lambda i: crm.list_records(employee, "contacts", {"limit": 50})),
        "all_scope_phone_fragment_search": timed(
            lambda i: crm.list_records(org["admin"], "contacts", {"q": fragments[i % len(fragments)], "limit": 50})),
        "match_contact_by_phone": timed(
            lambda i: crm.match_contact(tenant_id, phone=f"8 ({numbers[i % len(numbers)][:3]}) "
                                                         f"{numbers[i % len(numbers)][3:]}")),
    }
    hits = [len(crm.list_records(mid, "contacts", {"q": f, "limit": 50})["items"]) for f in fragments[:50]]

    base = f"{suite.base}/api/v1/contacts"
    mid_http = login(suite.base, org["product_code"], mid_login, PASSWORD)
    top_http = login(suite.base, org["product_code"], top_login, PASSWORD)

    def get(http: requests.Session, **params: Any) -> None:
        resp = http.get(base, params=params, timeout=30)
        assert resp.status_code == 200, resp.text

    def gateway_figures() -> dict[str, Any]:
        return {
            "department_scope_first_page_30_users": timed(lambda i: get(mid_http, limit=50)),
            "department_scope_page_41_via_cursor": timed(lambda i: get(mid_http, limit=50, cursor=mid_deep)),
            "department_scope_first_page_100_users": timed(lambda i: get(top_http, limit=50)),
            "department_scope_phone_fragment_search": timed(
                lambda i: get(mid_http, limit=50, q=fragments[i % len(fragments)])),
        }

    gateway = gateway_figures()
    # A keep-alive client waits ~40 ms for any answer over ~16 KB (a page of 50 contacts is ~20 KB): the
    # gateway's socket has Nagle's algorithm on, the client delays its ACK. With TCP_NODELAY on the
    # listening socket (accepted sockets inherit it) the stall goes; measured here as the fix would be.
    set_nodelay(suite)
    mid_http.close()
    top_http.close()
    gateway_nodelay = gateway_figures()
    plans = {
        "department_scope_first_page": explain(crm_url, tenant_id, mid_principal, {"limit": 50}),
        "department_scope_page_41": explain(crm_url, tenant_id, mid_principal, {"limit": 50, "cursor": mid_deep}),
        "department_scope_100_users_first_page": explain(crm_url, tenant_id, top_principal, {"limit": 50}),
        "department_scope_phone_fragment_search": explain(crm_url, tenant_id, mid_principal,
                                                          {"q": fragments[0], "limit": 50}),
    }
    return {
        "data": {"contacts": CONTACTS, "counterparties": COUNTERPARTIES, "users": len(owners),
                 "departments": sum(len(level) for level in levels[1:]), "tree": list(TREE),
                 "other_tenant_contacts": NOISE_CONTACTS,
                 "department_scope": {"departments": len(mid_principal["department_ids"]),
                                      "users": len(mid_principal["department_user_ids"]),
                                      "contacts_in_scope": in_scope},
                 "top_department_scope_users": len(top_principal["department_user_ids"]),
                 "phone_fragment_hits_per_search": {"min": min(hits), "max": max(hits),
                                                    "mean": round(sum(hits) / len(hits), 2)}},
        "rpc": rpc,
        "gateway": gateway,
        "gateway_with_tcp_nodelay": gateway_nodelay,
        "plans": plans,
        "notes": "sequential calls from one client; rpc = nameko standalone RPC to crm.list_records, gateway = "
                 "HTTP GET /api/v1/contacts with a bearer token (one RPC behind it); principals cached in crm",
    }
