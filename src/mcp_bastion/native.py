"""The compiled build: which modules the wheel compiles with mypyc, and which run compiled here.

The request path is compiled to C by mypyc when the wheel is built (`hatch_build.py` reads
`COMPILED` from this file without importing the package). Every module keeps its Python
source beside the extension, and an install without a C compiler, or with
`MCP_BASTION_COMPILE=0`, runs that source unchanged: same behaviour, about 40 % more CPU per
call (docs/performance.md). An editable install is never compiled, so edits take effect.

Kept out of the list, on purpose:
- `audit.sinks`: sinks are meant to be subclassed, and mypyc forbids interpreted subclasses of
  compiled classes (its per-request work is one buffered write per event-loop turn);
- `errors`: the error root is subclassed across the code base, tests and plug-ins alike;
- `server.runner` (start, stop, worker processes), and what runs at start-up or once per key
  rotation: configuration, discovery, key fetching, the CLI, the demo, the development IdP,
  building the safety filter chains (`safety.build`);
- `cedar` (Cedar policies, on the request path when a server has policy files): nearly all of
  its cost is the Cedar engine itself, Rust in cedarpy (reading the request's JSON, then
  evaluating; docs/performance.md), and cedarpy is an optional extra that the wheel's build
  environment does not install, so mypyc could only type its calls as Any anyway;
- of `quota`: the config, the build, the stores (`store.py` defines an error class, which
  mypyc cannot derive from the interpreted error root; `redis_store.py` spends its time in
  redis-py and the round trip);
- of `pinning`: the lockfile, the diff and the commands (start-up and the CLI), and the change
  reporter (once per changed definition).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util

__all__ = ["COMPILED", "build_description", "compiled_modules"]

COMPILED = (
    "mcp_bastion.app",
    "mcp_bastion.asgi",
    "mcp_bastion.audit.events",
    "mcp_bastion.auth.bearer",
    "mcp_bastion.auth.jwt",
    "mcp_bastion.auth.principal",
    "mcp_bastion.auth.verifier",
    "mcp_bastion.cache",
    "mcp_bastion.credentials.minted",
    "mcp_bastion.credentials.static",
    "mcp_bastion.mcp.calls",
    "mcp_bastion.mcp.era",
    "mcp_bastion.mcp.jsonrpc",
    "mcp_bastion.mcp.request_state",
    "mcp_bastion.mcp.sessions",
    "mcp_bastion.mcp.sse",
    "mcp_bastion.mcp.statuses",
    "mcp_bastion.pinning.canonical",
    "mcp_bastion.pinning.pins",
    "mcp_bastion.pinning.store",
    "mcp_bastion.pinning.views",
    "mcp_bastion.pipeline.audit",
    "mcp_bastion.pipeline.authenticate",
    "mcp_bastion.pipeline.authorize",
    "mcp_bastion.pipeline.body",
    "mcp_bastion.pipeline.edge",
    "mcp_bastion.pipeline.exchange",
    "mcp_bastion.pipeline.forward",
    "mcp_bastion.pipeline.gateway",
    "mcp_bastion.pipeline.listing",
    "mcp_bastion.pipeline.outbound",
    "mcp_bastion.pipeline.parse",
    "mcp_bastion.pipeline.relay",
    "mcp_bastion.pipeline.replies",
    "mcp_bastion.pipeline.request_state",
    "mcp_bastion.pipeline.screen",
    "mcp_bastion.policy.catalog",
    "mcp_bastion.policy.decide",
    "mcp_bastion.policy.scopes",
    "mcp_bastion.quota.concurrency",
    "mcp_bastion.quota.gcra",
    "mcp_bastion.quota.plan",
    "mcp_bastion.quota.stage",
    "mcp_bastion.route",
    "mcp_bastion.safety.chain",
    "mcp_bastion.safety.guard",
    "mcp_bastion.safety.matching",
    "mcp_bastion.safety.poisoning",
    "mcp_bastion.safety.rules",
    "mcp_bastion.safety.secrets",
    "mcp_bastion.safety.verdict",
    "mcp_bastion.safety.withheld",
    "mcp_bastion.server.connection",
    "mcp_bastion.server.cycle",
    "mcp_bastion.server.wire",
    "mcp_bastion.trace",
    "mcp_bastion.upstream.catalog",
    "mcp_bastion.upstream.client",
    "mcp_bastion.upstream.http11",
    "mcp_bastion.upstream.responses",
    "mcp_bastion.upstream.tool_list",
    "mcp_bastion.upstream.transport",
)


def compiled_modules() -> tuple[str, ...]:
    """The modules of `COMPILED` that this interpreter loads from an extension module."""
    native = []
    for name in COMPILED:
        spec = importlib.util.find_spec(name)
        if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            native.append(name)
    return tuple(native)


def build_description() -> str:
    """One phrase for `--version` and the start-up log: which build this process runs."""
    count = len(compiled_modules())
    if count == len(COMPILED):
        return f"compiled request path ({count} modules, mypyc)"
    if count == 0:
        return "interpreted (pure Python)"
    return f"partly compiled ({count} of {len(COMPILED)} request-path modules)"
