"""Migrations at start under an advisory lock: two processes, one database."""
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from crm_shared.db import make_engine
from crm_shared.layout import ROOT

HERE = Path(__file__).parent
MIGRATE = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(message)s")
from crm_shared.migrations import migrate
applied = migrate(sys.argv[1], sys.argv[2], "slow-test")
print("APPLIED" if applied else "UP-TO-DATE", flush=True)
"""


def test_two_processes_migrating_one_database_migrate_once(databases):
    url = databases.create("migrate")
    procs = [
        subprocess.Popen([sys.executable, "-c", MIGRATE, url, str(HERE / "slow_history")], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
    outcomes = sorted(out.strip().splitlines()[-1] for out, _ in results)
    # one migrated; the other waited on the lock, then found the database at head
    assert outcomes == ["APPLIED", "UP-TO-DATE"]
    waited = [err for out, err in results if "UP-TO-DATE" in out][0]
    assert "waiting for migration lock" in waited
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM slow_marker")) == 1
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0001"
    engine.dispose()


def test_every_service_history_applies_cleanly(databases):
    from crm_shared.layout import SERVICES
    from crm_shared.migrations import migrate

    for name in SERVICES:
        url = databases.create(f"hist_{name}")
        assert migrate(url, ROOT / "services" / name / "migrations", name)
        assert migrate(url, ROOT / "services" / name / "migrations", name) == []


def test_users_0003_renames_crm_journal_actions(databases):
    """Rows crm wrote as created/updated/deleted read as create/update/delete after 0003."""
    from crm_shared.migrations import migrate

    url = databases.create("journal_vocabulary")
    history = ROOT / "services" / "users" / "migrations"
    migrate(url, history, "users")
    engine = make_engine(url)
    with engine.begin() as conn:  # a database as 0002 left it
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0002'"))
        for source, action in [("crm", "created"), ("crm", "updated"), ("crm", "deleted"), ("api", "create")]:
            conn.execute(sa.text("INSERT INTO journal (tenant_id, source, entity, entity_id, action, changes) "
                                 "VALUES ('t1', :s, 'contact', 'c1', :a, '{}')"), {"s": source, "a": action})
    assert migrate(url, history, "users") == ["0003"]
    with engine.connect() as conn:
        actions = sorted(conn.scalars(sa.text("SELECT action FROM journal WHERE tenant_id = 't1'")))
    engine.dispose()
    assert actions == ["create", "create", "delete", "update"]
