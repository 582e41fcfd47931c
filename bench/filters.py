"""µs per screening by the local safety filters (`safety/`), timeit, in one process.

What the load targets F and G show end to end, taken apart: a `tools/call`'s arguments and
its result through each built-in filter and through the chain of target F (secrets, a
regex, nothing found: the usual case), the same result with a credential to redact, and
the 200 bench tools judged by the poisoning filter, first sight and relisted unchanged.

    python -m bench.filters            # JSON, with the build that produced it
    PYTHONPATH=build/native python -m bench.filters
"""

from __future__ import annotations

import copy
import json
import sys
import time
import timeit
from collections.abc import Coroutine
from typing import Any

from mcp_bastion.config.model import ServerConfig
from mcp_bastion.safety.build import build_chain
from mcp_bastion.safety.chain import SafetyChain
from mcp_bastion.safety.verdict import CallContext

from .targets import LOCAL_FILTERS
from .tools import TOOLS

CALL = CallContext("bench", "echo", "bench-user", "bench-client")
ARGUMENTS = {"n": 123456, "query": "find the quarterly report for the west region"}
RESULT = {"content": [{"type": "text", "text": "echo 123456"}], "isError": False}
LEAKY = {"content": [{"type": "text", "text": "key AKIAIOSFODNN7EXAMPLE in config"}], "isError": False}


def _done(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never waits (the local filters) without an event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("a local filter suspended")


def _chain(filters: list[dict[str, object]]) -> SafetyChain:
    server = ServerConfig.model_validate(
        {"name": "bench", "upstream": "http://127.0.0.1:1/mcp", "filters": filters}
    )
    chain = build_chain(server, 0, {}, lambda url: None)  # type: ignore[arg-type,return-value]  # no guard here
    assert chain is not None
    return chain


def _per_call(fn: Any, number: int) -> float:
    return round(min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6, 2)


def measure(number: int = 20_000) -> dict[str, float]:
    figures: dict[str, float] = {}
    for spec in LOCAL_FILTERS:
        chain = _chain(
            [{**spec, "screen": ["arguments", "result"]}] if spec["type"] != "poisoning" else [spec]
        )
        filters = chain.for_tool("echo")
        if not filters.results:
            continue
        figures[f"{spec['id']}_result_us"] = _per_call(
            lambda c=chain, f=filters: _done(c.screen_result(f, CALL, RESULT, False)), number
        )
    chain = _chain(LOCAL_FILTERS)
    filters = chain.for_tool("echo")
    figures["chain_arguments_us"] = _per_call(
        lambda: _done(chain.screen_arguments(filters, CALL, ARGUMENTS)), number
    )
    figures["chain_result_us"] = _per_call(
        lambda: _done(chain.screen_result(filters, CALL, RESULT, False)), number
    )
    figures["chain_result_redacting_us"] = _per_call(
        lambda: _done(chain.screen_result(filters, CALL, copy.deepcopy(LEAKY), False)), number // 4
    )
    known = [(tool, str(tool["name"]), None) for tool in TOOLS]
    fresh = [_chain(LOCAL_FILTERS) for _ in range(20)]  # built beforehand: start-up is not timed
    started = time.perf_counter()
    for each in fresh:
        each.screen_tools(known)
    figures["poisoning_200_tools_first_sight_us"] = round(
        (time.perf_counter() - started) / len(fresh) * 1e6, 1
    )
    chain.screen_tools(known)
    figures["poisoning_200_tools_relisted_us"] = _per_call(lambda: chain.screen_tools(known), 200)
    return figures


def main() -> None:
    from mcp_bastion.native import build_description

    figures: dict[str, object] = dict(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
    figures["build"] = build_description()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
