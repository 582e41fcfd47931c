"""RFC 8785 canonical JSON and the digests pins are made of: the RFC's own vectors, and the
properties a pin relies on (same definition, same digest, whatever the spelling)."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import orjson
import pytest

from mcp_bastion.pinning.canonical import (
    MAX_DEPTH,
    canonical_json,
    catalog_digest,
    definition_digest,
    field_digests,
    pinned_definition,
)

# RFC 8785 Appendix B: IEEE 754 bit patterns and the text JCS writes for them.
NUMBER_VECTORS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), NUMBER_VECTORS)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    value = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert canonical_json(value) == expected.encode()


def test_rfc8785_section_3_2_2_example() -> None:
    # The RFC's example input, its whitespace and escapes as written there.
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(json.loads(text)) == expected.encode()


def test_rfc8785_section_3_2_3_sorts_by_utf16_code_units() -> None:
    # U+1F600 is a surrogate pair in UTF-16 and sorts before U+FB33, unlike in code points.
    members = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    order = [key for key, _ in json.loads(canonical_json(members), object_pairs_hook=list)]
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert sorted(members) != order  # code point order would differ: the rule matters here


def test_escapes_are_the_jcs_ones() -> None:
    assert canonical_json('\b\t\n\f\r\x00\x1f\x7f\u2028é"\\/') == (
        '"\\b\\t\\n\\f\\r\\u0000\\u001f\x7f\u2028é\\"\\\\/"'.encode()
    )


def test_integers_beyond_two_to_the_53_are_doubles() -> None:
    assert canonical_json(2**53) == b"9007199254740992"
    assert canonical_json(2**53 + 1) == b"9007199254740992"  # as JavaScript reads it
    assert canonical_json(-(2**63)) == b"-9223372036854776000"


def test_the_same_definition_spelled_differently_has_one_digest() -> None:
    a = orjson.loads(b'{"name":"t","inputSchema":{"type":"object","maximum":1.0,"minimum":-0.0}}')
    b = orjson.loads(b'{"inputSchema":{"minimum":0,"maximum":1,"type":"object"},"name":"t"}')
    assert definition_digest(a) == definition_digest(b)
    expected = hashlib.sha256(b'{"inputSchema":{"maximum":1,"minimum":0,"type":"object"},"name":"t"}')
    assert definition_digest(a) == "sha256:" + expected.hexdigest()


def test_any_change_changes_the_digest() -> None:
    base: dict[str, Any] = {"name": "send", "inputSchema": {"type": "object", "properties": {"to": {}}}}
    bcc = {"name": "send", "inputSchema": {"type": "object", "properties": {"to": {}, "bcc": {}}}}
    retitled = {**base, "title": "Send"}
    assert len({definition_digest(d) for d in (base, bcc, retitled)}) == 3


def test_meta_is_not_pinned_and_unknown_members_are() -> None:
    tool = {"name": "t", "_meta": {"trace": 1}, "execution": {"taskSupport": "optional"}}
    assert pinned_definition(tool) == {"name": "t", "execution": {"taskSupport": "optional"}}
    assert definition_digest(pinned_definition(tool)) == definition_digest(
        pinned_definition({**tool, "_meta": {"trace": 2}})
    )


def test_what_cannot_be_canonical_is_refused() -> None:
    deep: Any = "x"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    for bad in (deep, "\ud800", {"a": float("nan")}, {1: "not a string key"}, {"a": object()}):
        with pytest.raises(ValueError):
            canonical_json(bad)
    just_deep_enough: Any = "x"
    for _ in range(MAX_DEPTH):
        just_deep_enough = [just_deep_enough]
    assert canonical_json(just_deep_enough).count(b"[") == MAX_DEPTH


def test_field_and_catalog_digests() -> None:
    definition = {"name": "t", "description": "d"}
    fields = field_digests(definition)
    assert fields == {
        "name": definition_digest({"name": "t"}),
        "description": definition_digest({"description": "d"}),
    }
    one, two = definition_digest({"name": "a"}), definition_digest({"name": "b"})
    assert catalog_digest([one, two]) == catalog_digest([two, one])  # list order is not meaning
    assert catalog_digest([one]) != catalog_digest([one, one])  # a repeated tool is
