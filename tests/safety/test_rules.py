"""RuleSet: named RE2 patterns over every key and string of a JSON value, in linear time."""

from __future__ import annotations

import copy
import re
import threading
from typing import Any

import pytest

from mcp_bastion.safety.rules import MAX_PATTERN_CHARS, RuleSet, compile_error, joinable


def _rules(max_input_chars: int = 1_000_000, **patterns: str) -> RuleSet:
    return RuleSet(list(patterns.items()), max_input_chars=max_input_chars)


def test_find_names_each_rule_that_matches_in_rule_order() -> None:
    rules = _rules(ssn=r"\b\d{3}-\d{2}-\d{4}\b", card=r"\b4\d{15}\b", never=r"zzz")
    value = {"a": ["x", {"b": "card 4111111111111111"}], "c": "ssn 123-45-6789"}
    assert rules.find(value) == ("ssn", "card")
    assert rules.find({"clean": "nothing here", "n": 123456789}) == ()


def test_redact_replaces_matches_in_place_keys_included() -> None:
    rules = _rules(ssn=r"\d{3}-\d{2}-\d{4}")
    inner = ["id 123-45-6789", 5, None, True]
    value: dict[str, Any] = {"text": "x 123-45-6789 y", "list": inner, "123-45-6789": "as a key"}
    redacted = rules.redact(value)
    assert redacted is not None
    new, found = redacted
    assert found == ("ssn",)
    assert new is value  # changed in place: no copy of a large result
    assert value["list"] is inner
    assert value == {
        "text": "x [redacted:ssn] y",
        "list": ["id [redacted:ssn]", 5, None, True],
        "[redacted:ssn]": "as a key",
    }


def test_redact_a_bare_string_and_a_clean_value() -> None:
    rules = _rules(word=r"secret")
    assert rules.redact("a secret and a secret") == ("a [redacted:word] and a [redacted:word]", ("word",))
    clean: dict[str, Any] = {"a": "b"}
    assert rules.redact(clean) == ({"a": "b"}, ())


def test_every_matching_rule_redacts_its_own_matches() -> None:
    rules = _rules(one=r"AAA", two=r"BBB")
    assert rules.redact(["AAA BBB"]) == (["[redacted:one] [redacted:two]"], ("one", "two"))


def test_a_value_nested_far_deeper_than_the_recursion_limit_is_walked() -> None:
    # orjson parses 1,024 levels; a recursive walk would die at Python's ~1,000.
    value: Any = "find me"
    for _ in range(5_000):
        value = [value]
    rules = _rules(me=r"find me")
    assert rules.find(value) == ("me",)
    assert rules.redact(value) is not None
    innermost = value
    while isinstance(innermost, list):
        innermost = innermost[0]
    assert innermost == "[redacted:me]"


@pytest.mark.parametrize("method", ["find", "redact"])
def test_more_text_than_the_cap_is_refused_not_half_read(method: str) -> None:
    rules = _rules(max_input_chars=1024, word=r"secret")
    assert getattr(rules, method)({"a": "x" * 1000, "b": "y" * 30}) is None
    assert getattr(rules, method)("z" * 1025) is None
    # keys count too
    assert getattr(rules, method)({"k" * 1025: 1}) is None
    assert getattr(rules, method)({"a": "x" * 1000, "b": "secret"}) is not None


def test_a_catastrophic_pattern_for_backtracking_engines_runs_in_linear_time() -> None:
    # (a+)+$ against a's followed by a b: Python's re takes ~2^n steps (n = 40: days);
    # RE2 answers in one pass. Run in a thread and wait on it under a timeout, no sleep.
    text = "a" * 40 + "b"
    assert re.compile(r"(a+)+$")  # the pattern is fine for `re` to compile; matching is the trap
    rules = _rules(evil=r"(a+)+$")
    answers: list[Any] = []
    worker = threading.Thread(target=lambda: answers.append(rules.find([text] * 1000)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert answers == [()]


def test_a_pem_armour_repeated_without_end_costs_one_pass() -> None:
    # With `re`, each unmatched BEGIN scans to the end of the text: quadratic in the text.
    rules = _rules(2_000_000, pem=r"-----BEGIN PRIVATE KEY-----(?s:.*?)(?:-----END PRIVATE KEY-----|\z)")
    text = "-----BEGIN PRIVATE KEY-----" * 40_000  # ~1 MB
    answers: list[Any] = []
    worker = threading.Thread(target=lambda: answers.append(rules.redact(text)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert answers == [("[redacted:pem]", ("pem",))]


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (r"(a)\1", "backreferences and lookaround are not supported"),
        (r"(?=x)y", "backreferences and lookaround are not supported"),
        (r"[unclosed", "not a pattern RE2 accepts"),
        ("", "may not be empty"),
        ("a" * (MAX_PATTERN_CHARS + 1), f"at most {MAX_PATTERN_CHARS} characters"),
        (r"((((x{1000}){1000}){1000}){1000})", "not a pattern RE2 accepts"),
    ],
)
def test_patterns_re2_refuses_are_named_with_why(pattern: str, problem: str) -> None:
    error = compile_error(pattern)
    assert error is not None
    assert problem in error


def test_an_acceptable_pattern_has_no_error() -> None:
    assert compile_error(r"(?i)\bpassword\s*=\s*\S+") is None


# --- matching all of a value's text at once ----------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "joins"),
    [
        (r"\bAKIA[A-Z2-7]{16}\b", True),
        (r"[^\s:/]+@[^\s]+", True),  # negated classes are not anchors
        (r"(?s:.*)", True),
        (r"^secret", False),
        (r"secret$", False),
        (r"\Asecret", False),
        (r"secret\z", False),
        (r"[$]", False),  # conservative: might be one
        (r"\$HOME", True),  # an escaped dollar sign
        (r"\[^x]", False),  # an escaped [ and then an anchor
        (r"\\^", False),
        (r"\\[^x]", True),  # an escaped backslash, then a negated class
    ],
)
def test_which_patterns_are_matched_joined(pattern: str, joins: bool) -> None:
    assert joinable(pattern) is joins


def test_the_built_in_tables_are_matched_joined() -> None:
    from mcp_bastion.safety.poisoning import POISONING_RULES
    from mcp_bastion.safety.secrets import SECRET_RULES

    for table in (SECRET_RULES, POISONING_RULES):
        assert [name for name, p in table.items() if not joinable(p)] == []
        assert RuleSet(list(table.items()), max_input_chars=1000)._joinable


def test_joined_matching_finds_what_text_by_text_matching_finds() -> None:
    from mcp_bastion.safety.poisoning import POISONING_RULES
    from mcp_bastion.safety.secrets import SECRET_RULES

    from .test_poisoning import CLEAN as CLEAN_TOOLS
    from .test_poisoning import POISONED
    from .test_secrets import CASES, CLEAN

    for table, texts in (
        (SECRET_RULES, [text for _, text, _ in CASES] + CLEAN),
        (POISONING_RULES, [text for _, text in POISONED] + [str(t) for t in CLEAN_TOOLS]),
    ):
        joined = RuleSet(list(table.items()), max_input_chars=1_000_000)
        alone = RuleSet([*table.items(), ("anchor", "^never-in-these-texts$")], max_input_chars=1_000_000)
        assert joined._joinable
        assert not alone._joinable
        for text in texts:
            # The text among others, as a key and as a value, first and last.
            for value in ({"a": "x", "b": ["y", text]}, {text: 1, "z": "w"}, [text, "tail"]):
                assert joined.find(value) == alone.find(value), text
                assert joined.redact(copy.deepcopy(value)) == alone.redact(copy.deepcopy(value)), text


def test_a_pattern_that_anchors_is_matched_text_by_text() -> None:
    # `^secret$` is the whole of the second string, but not at the start of the joined text.
    assert _rules(anchored=r"^secret$").find(["first", "secret"]) == ("anchored",)
    assert _rules(anchored=r"^secret$").redact(["first", "secret"]) == (
        ["first", "[redacted:anchored]"],
        ("anchored",),
    )
