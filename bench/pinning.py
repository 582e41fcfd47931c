"""µs per `tools/list` filter and per call decision, pinning off / record / enforce (timeit).

The load workloads (`pinning_*` in bench/__main__) measure whole requests, where the 66 KB
answer's JSON parsing and the HTTP stack dominate; this measures the gateway's own steps in
one process, on the fixture's 200 tools and the bench caller (`tools.read tools.write`,
destructive tools need `admin`, `tools_list: callable`), with the build the gateway targets
run:

- `parse_serialize_us`: `orjson.loads` of the upstream answer and `orjson.dumps` of the
  filtered one, which every mode pays (context);
- `filter_uncached_us`: `filter_tool_list` deciding and marking every tool (a route check
  that does not say what it reads of the caller turns the list cache off): what every list
  cost before the cache;
- `filter_{off,record,enforce}_us`: the same list again, answered from the cache (a digest of
  the list, a lookup);
- `first_sight_us`: judging a list never seen before in `record` mode: canonicalizing and
  hashing its 200 definitions (once per distinct list);
- `one_changed_us`: judging a list in which one description differs from every list before
  (an upstream that varies a description per answer): one definition hashed, the others
  found by their bytes;
- `decide_{off,enforce}_us`: one `tools/call` decision, without and with the pin check.

`python -m bench.pinning answer N` measures only what a `tools/list` answer costs the gateway
beyond relaying bytes: `ResponseGuard.check_json` (parse, filter, serialize) of the 200-tool
answer, with the default pinning, for `tools_list: callable` and `reachable`. It imports nothing of pinning, so it also runs against a
build from before pinning (`PYTHONPATH=<that build>`): a before/after on one machine.

`python -m bench.pinning cedar N` measures the `tools/list` filter on a route with Cedar
policies (`baseline` and `destructive-needs-group`), answered from the list cache and decided
afresh with the cache off (as every list was before the Cedar check gave its visibility).
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import json
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import orjson

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import NullSink
from mcp_bastion.auth.principal import Principal
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.mcp.calls import Call
from mcp_bastion.pipeline.exchange import Exchange, RequestHeaders
from mcp_bastion.pipeline.listing import filter_tool_list
from mcp_bastion.policy.catalog import ToolCatalog
from mcp_bastion.route import ServerRoute
from mcp_bastion.trace import TraceContext
from mcp_bastion.upstream.responses import ResponseGuard

from .tools import FILTERED_COUNT, GRANTED_SCOPES, TOOLS

REPO = Path(__file__).resolve().parents[1]
CALLER = Principal("bench", "https://issuer.example", "bench", frozenset(GRANTED_SCOPES.split()), "h", 1e12)
ANSWER = orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": {"tools": TOOLS}})


class Silent:
    """A check that does not say what it reads of the caller (so the list cache stays off)."""

    def check(self, principal: Principal, call: Call, annotations: object) -> None:
        return None


def _route(
    mode: str | None,
    folder: Path,
    *,
    uncached: bool = False,
    listing: str = "callable",
    policies: tuple[str, ...] = (),
) -> ServerRoute:
    pinning: dict[str, Any] = {"mode": mode}
    if mode == "enforce":
        from mcp_bastion.pinning.lockfile import write_lockfile
        from mcp_bastion.pinning.pins import sighting_of

        lockfile = str(folder / "bench.lock.json")
        write_lockfile(lockfile, {"bench": {t["name"]: sighting_of(t) for t in TOOLS}})
        pinning["lockfile"] = lockfile
    config = parse_config(
        {
            "public_base_url": "http://127.0.0.1:8000",
            "identity_providers": [{"name": "bench", "issuer": "https://issuer.example"}],
            "servers": [
                {
                    "name": "bench",
                    "upstream": "http://127.0.0.1:9/mcp",
                    "destructive_scopes": ["admin"],
                    "tools_list": listing,
                    **({"pinning": pinning} if mode is not None else {}),
                }
            ],
            **({"policy": {"files": _policy_files(folder, policies)}} if policies else {}),
        }
    )
    route = next(iter(build_gateway(LoadedConfig(config, {}), audit=NullSink()).routes.values()))
    if uncached:
        policy = dataclasses.replace(route.policy, checks=(*route.policy.checks, Silent()))
        route = dataclasses.replace(route, policy=policy)
    return route


def _policy_files(folder: Path, names: tuple[str, ...]) -> list[str]:
    """Examples of examples/policies/, aimed at the bench's server."""
    files = []
    for name in names:
        text = (REPO / "examples" / "policies" / f"{name}.cedar").read_text()
        path = folder / f"{name}.cedar"
        path.write_text(text.replace('Server::"files"', 'Server::"bench"'))
        files.append(str(path))
    return files


def _exchange(route: ServerRoute) -> Exchange:
    async def nothing(*_: Any) -> Any:
        return None

    trace = TraceContext("0" * 32, "0" * 16, "01")
    ex = Exchange({}, nothing, nothing, route, RequestHeaders({}, [], 0), trace)
    ex.principal = CALLER
    return ex


def _per_call(run: Callable[[], Any], number: int) -> float:
    return round(min(timeit.repeat(run, number=number, repeat=5)) / number * 1e6, 2)


def _filter_us(ex: Exchange, number: int) -> float:
    """µs per `filter_tool_list` on a freshly parsed answer, parsing not counted (each repeat
    parses its answers first) and the parsed tools kept alive (freeing them is the parser's
    cost, paid in every mode)."""
    best = float("inf")
    for _ in range(5):
        results = [orjson.loads(ANSWER)["result"] for _ in range(number)]
        kept = [result["tools"] for result in results]
        gc.disable()  # as timeit does: the answers parsed ahead would make each collection slow
        started = time.perf_counter()
        for result in results:
            filter_tool_list(ex, result)
        best = min(best, time.perf_counter() - started)
        gc.enable()
        assert all(len(result["tools"]) == FILTERED_COUNT for result in results)
        del kept
    return round(best / number * 1e6, 2)


def measure_answer(number: int = 500) -> dict[str, float]:
    """µs per 200-tool `tools/list` answer checked and filtered whole (`check_json`), with
    `tools_list: callable` (the bench's 101 tools) and `reachable` (the default: all 200, the
    admin tools marked as reachable)."""
    figures: dict[str, float] = {}
    for listing, count in (("callable", FILTERED_COUNT), ("reachable", len(TOOLS))):
        with tempfile.TemporaryDirectory() as folder:
            ex = _exchange(_route(None, Path(folder), listing=listing))

        def check(ex: Exchange = ex) -> bytes:
            guard = ResponseGuard({1}, 1, lambda result: filter_tool_list(ex, result))
            return guard.check_json(ANSWER)

        assert len(orjson.loads(check())["result"]["tools"]) == count
        figures[f"answer_{listing}_us"] = _per_call(check, number)
    return figures


def measure_pinning(number: int = 500) -> dict[str, float]:
    from mcp_bastion.pinning.store import ToolPins

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        routes = {mode: _route(mode, Path(folder)) for mode in ("off", "record", "enforce")}
        uncached = _route("off", Path(folder), uncached=True)
    filtered = orjson.loads(ANSWER)
    filtered["result"]["tools"] = filtered["result"]["tools"][:FILTERED_COUNT]
    figures["parse_serialize_us"] = _per_call(lambda: (orjson.loads(ANSWER), orjson.dumps(filtered)), number)
    figures["filter_uncached_us"] = _filter_us(_exchange(uncached), number)
    for mode, route in routes.items():
        ex = _exchange(route)
        _filter_us(ex, 1)  # first sight: judged and cached
        figures[f"filter_{mode}_us"] = _filter_us(ex, number)
    lists = [copy.deepcopy(TOOLS) for _ in range(number // 10)]
    fresh = iter(lists)
    figures["first_sight_us"] = round(
        min(
            timeit.repeat(
                lambda: ToolPins("b", "record").learn(ToolCatalog(), next(fresh)),
                number=len(lists) // 5,
                repeat=5,
            )
        )
        / (len(lists) // 5)
        * 1e6,
        2,
    )
    store, catalog = ToolPins("b", "record"), ToolCatalog()
    store.learn(catalog, TOOLS)
    varied = []
    for i in range(number):  # an upstream that puts something new in one description each time
        tools = list(TOOLS)
        tools[7] = {**TOOLS[7], "description": f"{TOOLS[7]['description']} ({i})"}
        varied.append(tools)
    each = iter(varied)
    figures["one_changed_us"] = _per_call(lambda: store.learn(catalog, next(each)), number // 5)
    call = Call("tools/call", "echo", 1)
    for mode in ("off", "enforce"):
        policy, hints = routes[mode].policy, routes[mode].catalog.get("echo")
        decide = policy.decide
        figures[f"decide_{mode}_us"] = _per_call(lambda d=decide, h=hints: d(CALLER, call, h), number * 100)
    return figures


def measure_cedar(number: int = 200) -> dict[str, float]:
    """µs per `tools/list` filter on a route with Cedar policies (the baseline and the
    destructive-tools example, which read a claim and the annotations): answered from the list
    cache (the Cedar check gives its visibility), and decided afresh (the cache off, as before
    it did); the bench caller is in `ops`, so the list is what C lists."""
    figures: dict[str, float] = {}
    policies = ("baseline", "destructive-needs-group")
    with tempfile.TemporaryDirectory() as folder:
        cached = _route(None, Path(folder), policies=policies)
        uncached = _route(None, Path(folder), policies=policies, uncached=True)
    for name, route in (("cedar_cached", cached), ("cedar_uncached", uncached)):
        ex = _exchange(route)
        ex.principal = dataclasses.replace(CALLER, claims={"groups": ["ops"]})
        _filter_us(ex, 1)  # first sight: judged (and Cedar's own answers remembered)
        figures[f"filter_{name}_us"] = _filter_us(ex, number)
    return figures


def main() -> None:
    """`python -m bench.pinning N`: the figures as JSON, with the build that produced them."""
    from mcp_bastion.native import build_description

    args = sys.argv[1:]
    if args and args[0] == "answer":
        figures: dict[str, Hashable] = dict(measure_answer(int(args[1]) if len(args) > 1 else 500))
    elif args and args[0] == "cedar":
        figures = dict(measure_cedar(int(args[1]) if len(args) > 1 else 200))
    else:
        figures = dict(measure_pinning(int(args[0]) if args else 500))
    figures["build"] = build_description()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
