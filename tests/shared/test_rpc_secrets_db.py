"""RPC timeouts, secret rotation, and the per-worker database session."""
import time

import pytest
import sqlalchemy as sa
from nameko.containers import ServiceContainer
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from crm_shared.config import ConfigError
from crm_shared.db import Database, make_engine
from crm_shared.errors import NotFound, ServiceUnavailable
from crm_shared.metrics import METRICS
from crm_shared.rpc import ServiceRpc
from crm_shared.secrets import SecretBox, SecretDecryptionError, generate_key


class Callee:
    name = "callee"

    @rpc
    def echo(self, value):
        return value

    @rpc
    def missing(self):
        raise NotFound("no such thing", code="thing_not_found")


class Caller:
    name = "caller"
    callee = ServiceRpc("callee", timeout=1.0)

    @rpc
    def call_echo(self, value):
        try:
            return {"ok": self.callee.echo(value)}
        except ServiceUnavailable as exc:
            return {"error": exc.code, "message": exc.message}

    @rpc
    def call_missing(self):
        return self.callee.missing()


def test_rpc_to_a_stopped_service_fails_within_its_timeout(private_containers):
    uri = private_containers.amqp_uri
    callee = private_containers.start(Callee, {"AMQP_URI": uri})
    private_containers.start(Caller, {"AMQP_URI": uri})
    with ClusterRpcProxy({"AMQP_URI": uri}, timeout=10) as proxy:
        assert proxy.caller.call_echo("hi") == {"ok": "hi"}
        # a domain error crosses two hops as itself, code intact
        with pytest.raises(NotFound) as err:
            proxy.caller.call_missing()
        assert err.value.code == "thing_not_found"
        callee.stop()
        started = time.monotonic()
        answer = proxy.caller.call_echo("again")
        elapsed = time.monotonic() - started
    assert answer["error"] == "service_unavailable"
    assert "callee" in answer["message"]
    assert 0.9 <= elapsed < 3, elapsed
    assert METRICS.value("crm_rpc_client_timeouts_total", {"service": "caller", "target": "callee"}) == 1


def test_rpc_to_a_service_that_never_ran_is_unavailable_at_once(private_containers):
    uri = private_containers.amqp_uri
    private_containers.start(Caller, {"AMQP_URI": uri})
    with ClusterRpcProxy({"AMQP_URI": uri}, timeout=10) as proxy:
        started = time.monotonic()
        answer = proxy.caller.call_echo("x")
    assert answer["error"] == "service_unavailable"
    assert time.monotonic() - started < 1


def test_a_secret_survives_key_rotation_and_is_reencrypted():
    key_a, key_b = generate_key(), generate_key()
    old = SecretBox.from_spec(f"a:{key_a}")
    stored = old.encrypt("sip-password", context="t1:sip:42")
    assert "sip-password" not in stored

    rotated = SecretBox.from_spec(f"b:{key_b},a:{key_a}")  # B primary, A still decrypts
    assert rotated.decrypt(stored, context="t1:sip:42") == "sip-password"
    assert rotated.needs_reencrypt(stored)
    moved = rotated.reencrypt(stored, context="t1:sip:42")
    assert SecretBox.key_id(moved) == "b" and not rotated.needs_reencrypt(moved)

    only_b = SecretBox.from_spec(f"b:{key_b}")  # A retired after re-encryption
    assert only_b.decrypt(moved, context="t1:sip:42") == "sip-password"
    with pytest.raises(SecretDecryptionError):
        only_b.decrypt(stored, context="t1:sip:42")
    # bound to its row: the same ciphertext does not open elsewhere
    with pytest.raises(SecretDecryptionError):
        only_b.decrypt(moved, context="t2:sip:42")


@pytest.mark.parametrize("spec", ["", "nokey", "a:short", "bad kid:" + "A" * 43])
def test_malformed_secret_keys_are_a_config_error(spec):
    with pytest.raises(ConfigError, match="CRM_SECRET_KEYS"):
        SecretBox.from_spec(spec)


class Writer:
    name = "writer"
    db = Database()

    @rpc
    def write(self, value, fail=False):
        self.db.execute(sa.text("INSERT INTO notes (value) VALUES (:v)"), {"v": value})
        if fail:
            raise ValueError("boom")
        return value


def test_worker_session_commits_before_the_reply_and_rolls_back_on_error(private_containers, databases):
    url = databases.create("dbsession")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE notes (value text)"))
    container = ServiceContainer(Writer, {"AMQP_URI": private_containers.amqp_uri, "DATABASE_URL": url})
    container.start()
    private_containers.started.append(container)
    with ClusterRpcProxy({"AMQP_URI": private_containers.amqp_uri}, timeout=10) as proxy:
        assert proxy.writer.write("kept") == "kept"
        # visible the moment the reply arrived: the commit came first
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM notes WHERE value = 'kept'")) == 1
        with pytest.raises(Exception):
            proxy.writer.write("dropped", fail=True)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM notes WHERE value = 'dropped'")) == 0
        # every session went back to the pool
        assert conn.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'idle in transaction'")) == 0
    engine.dispose()
