"""The per-tenant storage ledger over RPC (as the mail and 1C services call it)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm_shared.errors import Conflict, NotFound

MB = 1024 * 1024


def test_concurrent_reservations_never_exceed_the_quota(auth_suite):
    s = auth_suite
    tenant = s.create_tenant(disk_quota_mb=10)["tenant_id"]
    with s.rpc() as rpc:
        # 40 writers at once, 1 MiB each, on a 10 MiB quota
        replies = [rpc.auth.reserve_storage.call_async(tenant, MB, f"upload {i}") for i in range(40)]
        granted, refused = [], []
        for reply in replies:
            try:
                granted.append(reply.result())
            except Conflict as exc:
                assert exc.code == "quota_exceeded"
                refused.append(exc)
        assert len(granted) == 10 and len(refused) == 30
        details = refused[0].details
        assert details["allowed_bytes"] == 10 * MB and details["requested_bytes"] == MB
        assert details["used_bytes"] + details["reserved_bytes"] == 10 * MB
        # commits and releases under concurrency keep the books straight
        commits = [rpc.auth.commit_storage.call_async(r, MB // 2) for r in granted[:5]]
        assert all(c.result()["state"] == "committed" for c in commits)
        for rid in granted[5:]:
            rpc.auth.release_storage(rid)
        usage = rpc.auth.storage_usage(tenant)
        assert usage == {"disk_used_bytes": 5 * MB // 2, "disk_reserved_bytes": 0}
        # redelivered calls change nothing
        assert rpc.auth.commit_storage(granted[0], MB // 2)["disk_used_bytes"] == 5 * MB // 2
        assert rpc.auth.release_storage(granted[6])["state"] == "released"
        # freeing stored bytes (deduplicated by ref)
        assert rpc.auth.release_stored(tenant, MB // 2, "file-1")["disk_used_bytes"] == 2 * MB
        assert rpc.auth.release_stored(tenant, MB // 2, "file-1")["duplicate"] is True
        assert rpc.auth.storage_usage(tenant)["disk_used_bytes"] == 2 * MB
    tenant_view = s.call("GET", f"/api/v1/tenants/{tenant_code(s, tenant)}", s.operator_token).json()
    assert tenant_view["usage"]["disk_used_bytes"] == 2 * MB


def tenant_code(s, tenant_id):
    from services.auth.product_codes import display

    with s.auth_db.connect() as conn:
        return display(conn.execute(sa.text("SELECT product_code FROM tenants WHERE tenant_id = :t"),
                                    {"t": tenant_id}).scalar())


def test_a_writer_that_crashed_frees_its_reservation_when_it_expires(auth_suite):
    s = auth_suite
    tenant = s.create_tenant(disk_quota_mb=1)["tenant_id"]
    with s.rpc() as rpc:
        rid = rpc.auth.reserve_storage(tenant, MB, "crashed upload")
        with pytest.raises(Conflict):
            rpc.auth.reserve_storage(tenant, 1, "next")
        # the writer never comes back; time passes (the reservation's expiry is moved)
        s.sql("UPDATE storage_reservations SET expires_at = now() - interval '1 second' "
              "WHERE tenant_id = :t", t=tenant)
        second = rpc.auth.reserve_storage(tenant, MB, "retry")
        assert rpc.auth.commit_storage(second, 1000)["disk_used_bytes"] == 1000
        # the late commit of the expired reservation is still booked (the bytes exist)
        assert rpc.auth.commit_storage(rid, 10)["disk_used_bytes"] == 1010


def test_reservations_belong_to_their_tenant(auth_suite):
    s = auth_suite
    a = s.create_tenant()["tenant_id"]
    with s.rpc() as rpc:
        rid = rpc.auth.reserve_storage(a, 100, "x")
        forged = "f" * 32 + ":" + rid.split(":")[1]
        with pytest.raises(NotFound):
            rpc.auth.commit_storage(forged, 100)
        with pytest.raises(NotFound):
            rpc.auth.reserve_storage("f" * 32, 1, "no such tenant")


def test_housekeeping_ends_idle_sessions_and_forgets_old_rows(auth_suite):
    from nameko.testing.services import entrypoint_hook

    s = auth_suite
    inst = s.admin_session()
    with s.rpc() as rpc:
        rid = rpc.auth.reserve_storage(inst.tenant_id, 10, "abandoned")
    s.sql("UPDATE sessions SET idle_expires_at = now() - interval '1 second' WHERE tenant_id = :t",
          t=inst.tenant_id)
    s.sql("UPDATE storage_reservations SET expires_at = now() - interval '2 days' WHERE tenant_id = :t",
          t=inst.tenant_id)
    with entrypoint_hook(s.by_name["auth"], "housekeeping") as housekeeping:
        housekeeping()
    with s.auth_db.connect() as conn:
        reason = conn.execute(sa.text("SELECT revoke_reason FROM sessions WHERE tenant_id = :t"),
                              {"t": inst.tenant_id}).scalar()
        left = conn.execute(sa.text("SELECT count(*) FROM storage_reservations WHERE tenant_id = :t"),
                            {"t": inst.tenant_id}).scalar()
    assert reason == "expired" and left == 0
    # the ended session's seat is free and its refresh token dead
    resp = s.call("POST", "/api/v1/auth/refresh", json={"refresh_token": inst.tokens["refresh_token"]})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "session_expired"
    assert rid
