"""µs per seal and per unseal of a session id, with the gateway's own `SessionSealer` (timeit).

Unsealing is measured twice: an id this process has not opened before (AES-GCM decryption,
what every replica pays once per session) and an id it opened before (the memo of opened ids,
what a session's later requests pay; the subject and expiry checks run either way).
"""

from __future__ import annotations

import json
import os
import sys
import time
import timeit

from mcp_bastion.mcp.sessions import SessionSealer, subject_digest


def measure_sealing(number: int = 20_000, repeat: int = 5) -> dict[str, float]:
    key = os.urandom(32)
    sealer = SessionSealer(key, ttl_seconds=86_400)
    subject = subject_digest("https://issuer.example", "bench-user")
    upstream_id = "fixture-upstream-session-" + os.urandom(16).hex()  # a typical SDK-sized id
    now = time.time()
    sealed = sealer.seal(upstream_id, subject, "bench", now)
    seal = min(
        timeit.repeat(lambda: sealer.seal(upstream_id, subject, "bench", now), number=number, repeat=repeat)
    )
    distinct = [sealer.seal(f"{upstream_id}-{i}", subject, "bench", now) for i in range(number)]

    def open_all_fresh() -> None:
        opener = SessionSealer(key, ttl_seconds=86_400)  # nothing opened yet: each id is decrypted
        for each in distinct:
            opener.unseal(each, subject, "bench", now)

    unseal = min(timeit.repeat(open_all_fresh, number=1, repeat=repeat))
    sealer.unseal(sealed, subject, "bench", now)
    known = min(
        timeit.repeat(lambda: sealer.unseal(sealed, subject, "bench", now), number=number, repeat=repeat)
    )
    return {
        "seal_us": round(seal / number * 1e6, 2),
        "unseal_us": round(unseal / number * 1e6, 2),
        "unseal_known_us": round(known / number * 1e6, 2),
        "sealed_id_chars": len(sealed),
    }


def main() -> None:
    """`python -m bench.sealing N`: the figures as JSON, with the build that produced them
    (bench/__main__ runs this under the compiled build, as the gateway targets run)."""
    from mcp_bastion.native import build_description

    figures: dict[str, object] = dict(
        measure_sealing(number=int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
    )
    figures["build"] = build_description()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
