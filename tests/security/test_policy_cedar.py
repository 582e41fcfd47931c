"""Cedar policies against hostile input, through the real gateway over loopback: lying tool
annotations, hostile tool names, claims of the wrong shape, oversized arguments. Each fails
closed: refused (403, nothing reaches the upstream) or hidden, never a 500.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..support import recording_upstream
from .support import call, rpc, stack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
POLICIES = [str(EXAMPLES / n) for n in ("baseline.cedar", "destructive-needs-group.cedar")]
PATH_RULE = str(EXAMPLES / "path-under-prefix.cedar")
# A destructive tool its server calls read-only.
LIAR = {"name": "wipe_disk", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}}


def _names(s: Any, token: str) -> set[str]:
    answer = s.post(rpc("tools/list"), token=token)
    assert answer.status_code == 200, answer.text
    return {tool["name"] for tool in answer.json()["result"]["tools"]}


@pytest.mark.parametrize("trust", [True, False])
def test_lying_annotations_decide_nothing_when_not_trusted(
    monkeypatch: pytest.MonkeyPatch, trust: bool
) -> None:
    monkeypatch.setattr(recording_upstream, "TOOLS", [LIAR])
    with stack(server={"trust_annotations": trust}, policy={"files": POLICIES}) as s:
        token = s.token("tools.read tools.write", groups=["dev"])
        mark = s.mark()
        answer = s.post(call("wipe_disk"), token=token)
        listed = _names(s, token)
    if trust:
        # Believed, the lie makes the tool read-only to scopes and policies alike: the risk
        # `trust_annotations: true` takes (docs/policy.md; pinning is the answer to a change).
        assert (answer.status_code, listed) == (200, {"wipe_disk"})
    else:
        assert answer.status_code == 403
        assert answer.json()["error"]["message"] == "refused by policy"
        assert s.tool_calls_since(mark) == []
        assert listed == set()


def test_hostile_tool_names_from_the_upstream_are_decided_never_a_500(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = ['a"b', "new\nline", "back\\slash", "\u0301x", "\u202eevil", "nul\x00"]
    tools = [
        {"name": n, "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}} for n in names
    ]
    tools += [{"name": n + "!", "inputSchema": {"type": "object"}} for n in names]  # unannotated: destructive
    monkeypatch.setattr(recording_upstream, "TOOLS", tools)
    with stack(policy={"files": POLICIES}) as s:
        listed = _names(s, s.token("tools.read tools.write", groups=["dev"]))
    assert listed == set(names)


def test_a_claim_of_the_wrong_shape_refuses_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    with stack(policy={"files": POLICIES}) as s:
        token = s.token("tools.read tools.write", groups={"ops": True})
        mark = s.mark()
        answer = s.post(call("read_thing"), token=token)
        assert answer.status_code == 403
        assert (
            answer.json()["error"]["message"]
            == "the token's claim for principal.groups is not a list of strings"
        )
        assert s.tool_calls_since(mark) == []
        # Every call: tools/list and initialize are decided by the policies too.
        for method in ("tools/list", "initialize"):
            assert s.post(rpc(method), token=token).status_code == 403


def test_arguments_past_the_cap_are_refused_when_a_policy_reads_them(tmp_path: Path) -> None:
    # The path rule of examples/policies, for this server: a cut-off `path` could slip past it.
    rule = tmp_path / "path.cedar"
    rule.write_text(Path(PATH_RULE).read_text().replace('Server::"files"', 'Server::"rec"'))
    with stack(server={"policy_files": [str(rule)]}, policy={"files": POLICIES}) as s:
        token = s.token("tools.read tools.write", groups=["dev"])
        mark = s.mark()
        body = rpc(
            "tools/call",
            {"name": "write_thing", "arguments": {"path": "/srv/shared/a", "body": "x" * 70_000}},
        )
        answer = s.post(body, token=token)
        assert answer.status_code == 403
        assert "policy.max_argument_bytes: 65536" in answer.json()["error"]["message"]
        assert s.tool_calls_since(mark) == []
