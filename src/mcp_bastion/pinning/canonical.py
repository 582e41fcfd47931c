"""What a tool definition is, byte for byte: RFC 8785 canonical JSON and its SHA-256.

A pin must mean the same thing on every replica, after every upgrade: two gateways that see
the same definition must compute the same digest, whatever the key order or number spelling
the upstream chose, and whatever Python or JSON library runs them. So the digest is taken
over the JSON Canonicalization Scheme (RFC 8785, "JCS"), written out here rather than
borrowed from a serializer whose output is an implementation detail:

- objects: members sorted by their names' UTF-16 code units (§3.2.3), no whitespace;
- strings: only `"`, `\\` and U+0000 to U+001F escaped, the latter as `\\b \\t \\n \\f \\r` or
  `\\u00xx` (§3.2.2.2); everything else as UTF-8; a lone surrogate cannot be encoded;
- numbers: IEEE 754 doubles written as ECMAScript's `Number.prototype.toString` writes them
  (§3.2.2.3): `1.0` is `1`, `1e21` is `1e+21`, `-0` is `0`; integers beyond 2^53 are rounded
  to the nearest double, as every JCS implementation does.

What is hashed of a tool (`pinned_definition`): every member the upstream sent except
`_meta`. That is the issue's list (name, title, description, inputSchema, outputSchema,
annotations, icons) and any member this gateway does not know yet (a new spec field can
reach the model as surely as a description can, so an unknown member is pinned, not
ignored). `_meta` is left out: it is protocol metadata an upstream may vary per answer, and
where the gateway writes its own marks.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any, Final

__all__ = [
    "MAX_DEPTH",
    "PINNED_FIELDS",
    "canonical_json",
    "catalog_digest",
    "definition_digest",
    "field_digests",
    "pinned_definition",
]

# The members the issue names; `pinned_definition` keeps these and any other but `_meta`.
PINNED_FIELDS: Final = ("name", "title", "description", "inputSchema", "outputSchema", "annotations", "icons")
UNPINNED_FIELDS: Final = frozenset({"_meta"})
# Deeper than any schema a person writes; a deeper definition cannot be pinned (and is
# treated as changed): recursion stays bounded whatever an upstream nests.
MAX_DEPTH: Final = 64
_SAFE_INTEGER: Final = 2**53
DIGEST_PREFIX: Final = "sha256:"


def pinned_definition(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a tool definition a pin covers: every member but `_meta`."""
    return {key: value for key, value in tool.items() if key not in UNPINNED_FIELDS}


def definition_digest(definition: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the canonical JSON of `definition` (already `pinned_definition`).
    ValueError when it cannot be canonicalized (too deep, a lone surrogate)."""
    return DIGEST_PREFIX + hashlib.sha256(canonical_json(definition)).hexdigest()


def field_digests(definition: Mapping[str, Any]) -> dict[str, str]:
    """Each member's own digest: which parts changed, without keeping the definition."""
    return {key: definition_digest({key: value}) for key, value in definition.items()}


def catalog_digest(digests: Iterable[str]) -> str:
    """One digest for a whole tool list: the tools' digests sorted (order is not meaning),
    as a canonical JSON array. Each tool digest covers its name."""
    return definition_digest({"tools": sorted(digests)})


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of a JSON value (dicts, lists, str, int, float, bool, None)."""
    parts: list[str] = []
    _write(value, parts, 0)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone surrogate, which JSON text cannot carry") from None


def _write(value: Any, out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        out.append(encode_basestring(value))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    elif isinstance(value, int):
        out.append(str(value) if -_SAFE_INTEGER <= value <= _SAFE_INTEGER else _number(float(value)))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, Mapping):
        _write_object(value, out, depth)
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out, depth + 1)
        out.append("]")
    else:
        raise ValueError(f"not a JSON value: {type(value).__name__}")


def _write_object(value: Mapping[Any, Any], out: list[str], depth: int) -> None:
    for key in value:
        if not isinstance(key, str):
            raise ValueError("an object member name is not a string")
    # §3.2.3: sorted by UTF-16 code units; big-endian UTF-16 bytes sort the same way.
    keys = sorted(value, key=_utf16)
    out.append("{")
    for i, key in enumerate(keys):
        if i:
            out.append(",")
        out.append(encode_basestring(key))
        out.append(":")
        _write(value[key], out, depth + 1)
    out.append("}")


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _number(value: float) -> str:
    """ECMAScript Number::toString for a finite double (ECMA-262 §6.1.6.1.20)."""
    if not math.isfinite(value):
        raise ValueError("a number is not finite")
    if value == 0:
        return "0"  # -0 too
    sign = "-" if value < 0 else ""
    # repr() is the shortest digit string that reads back as the same double, as ES requires.
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    exponent += len(digit_tuple) - len(digits)  # the zeros stripped move into the exponent
    k = len(digits)
    n = exponent + k  # the value is 0.<digits> * 10^n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
