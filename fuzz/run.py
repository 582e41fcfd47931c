"""Fuzz the gateway's request path for a while: `scripts/fuzz [SECONDS]` (default 60).

Engines:

- atheris (libFuzzer, coverage-guided), when it is installed (`pip install -e '.[test]'` on
  Linux x86-64 brings it). The gateway package is instrumented; the corpus grows in
  `<workdir>/corpus`, and libFuzzer prints its progress lines (`#N NEW cov: …`).
- random mutation of the seeds, anywhere else (no coverage guidance, same oracles).

A finding (see fuzz/request_path.py for the oracles) is saved as `<workdir>/crashes/crash-…`
and the exit status is 1. Re-run one input with `scripts/fuzz --reproduce FILE`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import random
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

DEFAULT_WORKDIR = Path("out/fuzz")
MAX_INPUT_BYTES = 4096


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("seconds", nargs="?", type=int, default=60, help="how long to fuzz (default 60)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="corpus and crashes go here")
    parser.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    parser.add_argument("--reproduce", type=Path, metavar="FILE", help="run one saved input and exit")
    args = parser.parse_args(argv)
    if args.reproduce is not None:
        return _reproduce(args.reproduce)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if importlib.util.find_spec("atheris") is not None else "random"
    corpus, crashes, seeds = (args.workdir / name for name in ("corpus", "crashes", "seeds"))
    for folder in (corpus, crashes, seeds):
        folder.mkdir(parents=True, exist_ok=True)
    print(f"fuzzing the request path for {args.seconds} s with {engine}", flush=True)
    print(f"  corpus:  {corpus}/", flush=True)
    print(f"  crashes: {crashes}/  (re-run one with: scripts/fuzz --reproduce FILE)", flush=True)
    if engine == "atheris":
        return _atheris(args.seconds, corpus, crashes, seeds)
    return _random(args.seconds, corpus, crashes)


def _atheris(seconds: int, corpus: Path, crashes: Path, seeds: Path) -> int:
    import atheris

    with atheris.instrument_imports(include=["mcp_bastion"]):
        from fuzz import request_path
    for name, data in request_path.seed_inputs().items():
        (seeds / name).write_bytes(data)
    libfuzzer_args = [
        sys.argv[0],
        f"-max_total_time={seconds}",
        f"-artifact_prefix={crashes}/",
        f"-max_len={MAX_INPUT_BYTES}",
        "-timeout=10",  # seconds per input; each takes about a millisecond
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        str(corpus),
        str(seeds),
    ]
    atheris.Setup(libfuzzer_args, request_path.one_input)
    atheris.Fuzz()  # exits the process: 0 when the time is up, non-zero on a finding
    return 0


def _random(seconds: int, corpus: Path, crashes: Path) -> int:
    from fuzz import request_path

    pool = [*request_path.seed_inputs().values(), *(p.read_bytes() for p in sorted(corpus.iterdir()))]
    rng = random.Random()  # noqa: S311  (fuzz inputs, not secrets)
    started = last = time.monotonic()
    runs = 0
    while (now := time.monotonic()) - started < seconds:
        data = _mutate(rng, rng.choice(pool), pool)
        try:
            request_path.one_input(data)
        except Exception:
            path = crashes / f"crash-{hashlib.sha1(data).hexdigest()}"  # noqa: S324  (a file name)
            path.write_bytes(data)
            traceback.print_exc()
            print(f"FINDING after {runs} runs; input saved to {path}", flush=True)
            return 1
        runs += 1
        if now - last >= 5:
            last = now
            print(f"#{runs} runs, {runs / (now - started):.0f}/s", flush=True)
    print(f"Done {runs} runs in {int(time.monotonic() - started)} second(s); no finding", flush=True)
    return 0


def _mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(5)
        at = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif op == 1:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 2 and out:
            del out[at : at + rng.randint(1, 8)]
        elif op == 3:
            other = rng.choice(pool)
            out[at:] = other[rng.randrange(len(other) + 1) :]
        else:
            out += bytes(rng.randint(1, 32))
    return bytes(out[:MAX_INPUT_BYTES])


def _reproduce(path: Path) -> int:
    from fuzz import request_path

    run: Callable[[bytes], None] = request_path.one_input
    try:
        run(path.read_bytes())
    except Exception:
        traceback.print_exc()
        return 1
    print(f"{path}: no finding", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
