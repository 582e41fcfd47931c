"""Shared hypothesis strategies for hostile input, and the example budget of every property.

Budgets are sized so that the whole folder runs in well under a minute on CI's two cores.
For a long local run, scale every budget up (deadlines stay the same)::

    BASTION_PROPERTY_SCALE=50 .venv/bin/pytest tests/properties -q
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SCALE = float(os.environ.get("BASTION_PROPERTY_SCALE", "1"))


def budget(examples: int, *, deadline_ms: int = 1000) -> settings:
    """Settings for one property: `examples` times the scale, a per-example time bound.

    The deadline is the "bounded time" half of each property: a parser that goes quadratic
    on a hostile input fails it. It is generous because CI shares two cores with servers
    running in threads; every parser here answers in microseconds.
    """
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=timedelta(milliseconds=deadline_ms),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- text and bytes -------------------------------------------------------------------------

# What attackers put in strings: controls, CR/LF, NUL, quotes, escapes, lone surrogates,
# bidi overrides, zero-width and homoglyph characters, and plain ASCII most of the time.
_NASTY_CHARS = "\x00\r\n\t\x1b\x7f\"'\\/<>&=?#%;,.:-_ \u202e\u200b\u2028\u0456\ufeff\U0001f600"
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(_NASTY_CHARS) | st.characters(max_codepoint=0x7F), max_size=40),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=40),
)
latin1_text = st.text(alphabet=st.characters(codec="latin-1"), max_size=80)

# JSON-ish scalars, with the values that break naive parsers: huge and negative numbers,
# floats where ints are expected, booleans where numbers are expected, empty strings.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # orjson.dumps refuses wider ints
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any JSON document (as Python data) orjson can serialize."""
    return st.recursive(
        json_scalars,
        lambda children: st.lists(children, max_size=5) | st.dictionaries(hostile_text, children, max_size=5),
        max_leaves=max_leaves,
    )


def json_bytes(max_leaves: int = 20) -> st.SearchStrategy[bytes]:
    return json_values(max_leaves).map(orjson.dumps)


# Fragments of JSON text: concatenated, they make bodies that are almost JSON, which random
# bytes seldom are (unbalanced brackets, bad escapes, overlong numbers, BOMs, bad UTF-8).
_JSON_TOKENS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b'"',
    b"\\",
    b'"jsonrpc"',
    b'"2.0"',
    b'"id"',
    b'"method"',
    b'"params"',
    b'"result"',
    b'"error"',
    b'"tools/call"',
    b'"name"',
    b"0",
    b"-1",
    b"1e999",
    b"9" * 30,
    b"1.5",
    b"null",
    b"true",
    b"NaN",
    b"Infinity",
    b'"\\ud800"',
    b'"\\u0000"',
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc0\xaf",
    b" ",
    b"\n",
]
json_ish_bytes = st.lists(st.sampled_from(_JSON_TOKENS), max_size=40).map(b"".join)


T = TypeVar("T")
E = TypeVar("E", bound=BaseException)


def outcome(error: type[E], call: Callable[..., T], *args: Any, **kwargs: Any) -> T | E:
    """`call(*args, **kwargs)`, or the `error` it raised: the two outcomes a property allows.

    Any other exception propagates and fails the property, which is the point.
    """
    try:
        return call(*args, **kwargs)
    except error as err:
        return err
