"""µs per seal and per unseal of a session id, with the gateway's own `SessionSealer` (timeit)."""

from __future__ import annotations

import os
import time
import timeit

from mcp_bastion.mcp.sessions import SessionSealer, subject_digest


def measure_sealing(number: int = 20_000, repeat: int = 5) -> dict[str, float]:
    sealer = SessionSealer(os.urandom(32), ttl_seconds=86_400)
    subject = subject_digest("https://issuer.example", "bench-user")
    upstream_id = "fixture-upstream-session-" + os.urandom(16).hex()  # a typical SDK-sized id
    now = time.time()
    sealed = sealer.seal(upstream_id, subject, "bench", now)
    seal = min(
        timeit.repeat(lambda: sealer.seal(upstream_id, subject, "bench", now), number=number, repeat=repeat)
    )
    unseal = min(
        timeit.repeat(lambda: sealer.unseal(sealed, subject, "bench", now), number=number, repeat=repeat)
    )
    return {
        "seal_us": round(seal / number * 1e6, 2),
        "unseal_us": round(unseal / number * 1e6, 2),
        "sealed_id_chars": len(sealed),
    }
