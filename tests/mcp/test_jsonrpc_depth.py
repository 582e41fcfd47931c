"""`nested_deeper`: the depth of a JSON body read from its bytes, against the depth of the
parsed document, on generated documents (brackets and escaped quotes inside strings
included) and on the shapes that made walking the document slow."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_bastion.mcp.jsonrpc import nested_deeper

# Strings full of what could be mistaken for structure: brackets, quotes, backslashes.
_TRICKY_TEXT = st.text(alphabet=st.sampled_from('[]{}"\\,:ab\u00e9\n'), max_size=12)
_JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY_TEXT, inner, max_size=4),
    max_leaves=60,
)


def _depth(doc: Any) -> int:
    """The reference: containers on the deepest path (a scalar alone is depth 0)."""
    if isinstance(doc, dict):
        return 1 + max((_depth(v) for v in doc.values()), default=0)
    if isinstance(doc, list):
        return 1 + max((_depth(v) for v in doc), default=0)
    return 0


def _nest(depth: int, kinds: str = "[{") -> Any:
    doc: Any = 1
    for level in range(depth):
        doc = [doc] if kinds[level % len(kinds)] == "[" else {"k": doc}
    return doc


@settings(max_examples=400, deadline=None)
@given(_JSON, st.integers(1, 20))
def test_agrees_with_the_depth_of_the_parsed_document(doc: Any, limit: int) -> None:
    body = orjson.dumps(doc)
    assert nested_deeper(body, limit) == (_depth(doc) > limit)


def test_every_limit_around_a_deep_document_of_both_kinds() -> None:
    for kinds in ("[", "{", "[{", "{[", "[[{"):
        for depth in range(1, 40):
            doc = {"wrap": _nest(depth, kinds), "wide": [[], {}, [[]]]}
            body, actual = orjson.dumps(doc), max(depth, 3) + 1
            assert actual == _depth(doc)
            for limit in range(1, 45):
                assert nested_deeper(body, limit) == (actual > limit), (kinds, depth, limit)


def test_quotes_escaped_inside_strings_do_not_end_them() -> None:
    body = orjson.dumps({"a": 'x\\"[[[[[[[[[[', "b": '\\\\"{{{{{{{{{{{', "c": [[1]]})
    assert nested_deeper(body, 3) is False
    assert nested_deeper(body, 2) is True


def test_the_slow_shapes_for_a_walk_are_decided() -> None:
    # Shapes that cost a document walk up to a second per MiB (hundreds of thousands of
    # containers): wide and shallow, many chains just under the cap, and one just over it.
    wide = b"[" + b"[]," * 300_000 + b"[]]"
    assert nested_deeper(wide, 64) is False
    chain = b"[" * 63 + b"]" * 63
    chains = b"[" + b",".join([chain] * 4000) + b"]"
    assert nested_deeper(chains, 64) is False
    assert nested_deeper(b"[" + b",".join([chain] * 4000 + [b"[" + chain + b"]"]) + b"]", 64) is True
