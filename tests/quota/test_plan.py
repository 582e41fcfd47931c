"""Which buckets a request counts against: verified identity only, batches added up."""

from __future__ import annotations

from typing import Any

from mcp_bastion.auth.principal import Principal
from mcp_bastion.mcp.calls import Call
from mcp_bastion.quota.config import QuotaRule
from mcp_bastion.quota.plan import QuotaPlan, bucket_key

ALICE = Principal("alice", "https://idp-a.example", "app-1", frozenset(), "h", 1e12)
CALL = Call("tools/call", "search", 1)


def rule(**fields: Any) -> QuotaRule:
    return QuotaRule.model_validate({"name": "r", "rate": 10, "key": ["subject"], **fields})


def test_the_same_subject_at_another_issuer_is_another_caller() -> None:
    # `sub` is unique only per issuer (OIDC Core §2): two IdPs may both have an "alice".
    other = Principal("alice", "https://idp-b.example", "app-1", frozenset(), "h", 1e12)
    assert bucket_key(rule(), ALICE, "srv", CALL) != bucket_key(rule(), other, "srv", CALL)


def test_key_parts_choose_what_one_bucket_is_per() -> None:
    per_subject = rule(key=["subject"])
    per_tool = rule(key=["subject", "tool"])
    other_tool = Call("tools/call", "delete", 2)
    assert bucket_key(per_subject, ALICE, "srv", CALL) == bucket_key(per_subject, ALICE, "srv", other_tool)
    assert bucket_key(per_tool, ALICE, "srv", CALL) != bucket_key(per_tool, ALICE, "srv", other_tool)
    per_client = rule(key=["client"])
    bob_same_app = Principal("bob", ALICE.issuer, "app-1", frozenset(), "h", 1e12)
    assert bucket_key(per_client, ALICE, "srv", CALL) == bucket_key(per_client, bob_same_app, "srv", CALL)


def test_names_cannot_be_chosen_to_collide_with_another_key() -> None:
    # Parts are a JSON list, not joined text: ("a:b", "c") and ("a", "b:c") stay apart.
    two = rule(key=["server", "tool"])
    assert bucket_key(two, ALICE, "a", Call("tools/call", "b|c", 1)) != bucket_key(
        two, ALICE, "a|b", Call("tools/call", "c", 1)
    )


def test_rules_with_the_same_key_parts_keep_separate_buckets() -> None:
    assert bucket_key(rule(name="a"), ALICE, "srv", CALL) != bucket_key(rule(name="b"), ALICE, "srv", CALL)


def test_a_batch_counts_each_request_once_per_bucket() -> None:
    plan = QuotaPlan([rule()])
    calls = [Call("tools/call", "a", 1), Call("tools/list", None, 2), Call("notifications/x", None, None)]
    (ask, _), *rest = plan.asks(ALICE, "srv", calls)
    assert rest == []
    assert ask.cost == 2  # the notification asks the upstream for nothing


def test_tool_rules_count_only_the_tools_they_name() -> None:
    plan = QuotaPlan(
        [rule(name="expensive", tools=["search"]), rule(name="per-tool", key=["subject", "tool"])]
    )
    assert [r.name for _, r in plan.asks(ALICE, "srv", [Call("tools/list", None, 1)])] == []
    assert [r.name for _, r in plan.asks(ALICE, "srv", [CALL])] == ["expensive", "per-tool"]
    assert [r.name for _, r in plan.asks(ALICE, "srv", [Call("tools/call", "other", 1)])] == ["per-tool"]


def test_method_and_server_selections() -> None:
    plan = QuotaPlan([rule(methods=["tools/call"], servers=["billing"])])
    assert plan.asks(ALICE, "other", [CALL]) == []
    assert plan.asks(ALICE, "billing", [Call("tools/list", None, 1)]) == []
    assert len(plan.asks(ALICE, "billing", [CALL])) == 1
