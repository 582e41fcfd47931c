"""Pydantic's validation errors, retold for the person editing the YAML file.

Every message names the full key path (`servers[0].upstream_auth.secret`), what was found
and what was expected, in the file's own vocabulary: a "list", a "mapping", "text",
"a whole number" — never "a valid tuple" or a model class name. A value at a secret's
place is never repeated back: it may be the secret itself, written inline by mistake.
"""

from __future__ import annotations

import datetime
import difflib
import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from .model import BastionConfig

__all__ = ["CONFIG_REFERENCE_URL", "REPOSITORY_URL", "explain", "key_path"]

REPOSITORY_URL = "https://github.com/mcp-bastion/mcp-bastion"
# An installed user has no docs/ folder: hints point at the published page.
CONFIG_REFERENCE_URL = f"{REPOSITORY_URL}/blob/main/docs/config.md"

Location = tuple[int | str, ...]
_SECRET_PLACES = {("sessions", "key"), ("signing", "key")}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_FOUND_CHARS = 60


def explain(exc: ValidationError, source: str) -> ConfigError:
    """One ConfigError for all of `exc`'s errors: the first in full, then the others."""
    # Unknown keys first: a misspelt key is usually why a required one is "missing".
    errors = sorted(exc.errors(include_url=False), key=lambda err: err["type"] != "extra_forbidden")
    located = [(_location(err), err) for err in errors]
    locations = [loc for loc, _ in located]
    lines = []
    for loc, err in located:
        if err["type"] == "too_short" and any(o != loc and o[: len(loc)] == loc for o in locations):
            continue  # a container "too short" only because its items failed: noise
        lines.append((key_path(loc) or "(top level)", _message(err, loc)))
    (path, message), *rest = lines
    more = f" (and {len(rest)} more: {'; '.join(f'{p}: {m}' for p, m in rest)})" if rest else ""
    return ConfigError(
        message + more, source=source, path=path, hint=f"every key is described at {CONFIG_REFERENCE_URL}"
    )


def key_path(loc: Location) -> str:
    """`("servers", 0, "tools", "send.mail")` → `servers[0].tools["send.mail"]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _IDENTIFIER.match(part):
            out += f"[{_quoted(part)}]"
        else:
            out += f".{part}" if out else part
    return out


def _location(err: Any) -> Location:
    loc = tuple(err["loc"])
    if _is_key_error(err):
        # A mapping key that is not text (`1:` or `2020-01-01:`): the path ends at that key.
        return _without_tags((*loc[: -2 if loc[-1] == "[key]" else -1], str(err["input"])))
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, (err.get("ctx") or {}).get("discriminator", "'type'").strip("'"))
    # Model-level checks (base.py's `refuse`) point further down, at the key they are about.
    return _without_tags((*loc, *(err.get("ctx") or {}).get("at", ())))


def _without_tags(loc: Location) -> Location:
    """Pydantic names the member of a tagged union in the path (`filters[0].regex.patterns`):
    the file has no such key, so the tag is left out (`filters[0].patterns`)."""
    kind: Any = BastionConfig
    out: list[int | str] = []
    for part in loc:
        members = _tagged_members(kind)
        if members and isinstance(part, str) and part in members:
            kind = members[part]
            continue
        out.append(part)
        kind = _child(kind, part)
    return tuple(out)


def _is_key_error(err: Any) -> bool:
    return err["type"] == "invalid_key" or (bool(err["loc"]) and err["loc"][-1] == "[key]")


def _message(err: Any, loc: Location) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    secret = _is_secret_place(loc)
    found = "" if secret else f", found {_describe(err.get('input'))}"
    if kind == "bastion":
        return str(ctx["detail"])
    if _is_key_error(err):
        return f"a key must be text, found {_describe(err['input'])} (put it in quotes)"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_not_found":
        tags = ", ".join(map(repr, _tagged_members(_kind_at(tuple(err["loc"])))))
        return f"required key is missing: one of {tags}"
    if kind == "union_tag_invalid":
        return f"expected one of {ctx.get('expected_tags', '')}, found {_describe(ctx.get('tag'))}"
    if kind == "extra_forbidden":
        return _unknown_key(tuple(err["loc"]))
    if kind == "model_type" and secret:
        return (
            "a secret is never written in the config file: "
            "give it as {env: VARIABLE} (an environment variable) or {file: PATH} (a file holding it)"
        )
    if kind == "string_pattern_mismatch":
        pattern = _PATTERN_HELP.get(str(ctx.get("pattern")), "the documented format")
        return f"{_describe(err['input'])} has characters not allowed here (expected {pattern})"
    expected = _EXPECTED.get(kind)
    if expected is not None:
        return f"expected {expected}{found}{_list_hint(kind, err.get('input'))}"
    bound = _BOUNDS.get(kind)
    if bound is not None:
        word, key = bound
        return f"must be {word} {_number(ctx[key])}{found}"
    if kind == "literal_error":
        return f"expected {ctx['expected']}{found}"
    if kind == "too_short":
        return f"needs at least {_items(ctx['min_length'])}, found {ctx['actual_length']}"
    if kind == "too_long":
        return f"takes at most {_items(ctx['max_length'])}, found {ctx['actual_length']}"
    if kind in ("recursion_loop", "recursion_depth_exceeded"):
        return "refers to itself (a YAML alias inside its own anchor) or nests too deeply"
    return str(err["msg"]).removeprefix("Value error, ")


_EXPECTED = {
    "string_type": "text",
    "string_unicode": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "int_parsing_size": "a whole number of a sensible size",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a mapping of keys (key: value)",
    "model_type": "a mapping of keys (key: value)",
    "model_attributes_type": "a mapping of keys (key: value)",
}
_BOUNDS = {
    "greater_than": ("more than", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "less_than_equal": ("at most", "le"),
}
_PATTERN_HELP = {
    r"^[a-z0-9][a-z0-9_-]{0,62}$": "a lower-case name of letters, digits, '-' and '_'",
    r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$": "an OAuth scope token: printable ASCII without spaces, quotes or backslashes",
    r"^[A-Za-z0-9-]{1,64}$": "an HTTP header name",
}


def _list_hint(kind: str, value: Any) -> str:
    if kind in ("tuple_type", "list_type") and isinstance(value, str | int | float):
        return f" (a list of one is written [{value}])"
    return ""


def _describe(value: Any) -> str:
    """What the file holds, in YAML's words; scalars are quoted, cut to a readable length."""
    if value is None:
        return "an empty value (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        cut = value if len(value) <= _FOUND_CHARS else value[:_FOUND_CHARS] + "…"
        return f"the text {_quoted(cut)}"
    if isinstance(value, list | tuple):
        return f"a list of {_items(len(value))}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bytes):
        return "binary data (!!binary)"
    if isinstance(value, datetime.date):
        return f"the date {value.isoformat()} (quote it to make it text)"
    return type(value).__name__


def _quoted(text: str) -> str:
    return repr(text) if "'" not in text else '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = str(value)
    return text if len(text) <= _FOUND_CHARS else f"a number of {len(text)} digits"


def _items(count: int) -> str:
    return f"{count} item" + ("" if count == 1 else "s")


def _is_secret_place(loc: Location) -> bool:
    names = tuple(part for part in loc if isinstance(part, str))
    if names[:2] in _SECRET_PLACES and len(names) == 2:
        return True
    # servers[i].upstream_auth.secret or servers[i].filters[j].secret itself (its `env` /
    # `file` below are only names).
    return names[-2:] in (("upstream_auth", "secret"), ("filters", "secret"))


def _unknown_key(loc: Location) -> str:
    allowed = _keys_at(loc[:-1])
    name = str(loc[-1])
    if not allowed:
        return "unknown key (check its spelling and indentation)"
    close = difflib.get_close_matches(name, allowed, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({guess}check its spelling and indentation; expected one of: {', '.join(allowed)})"


def _keys_at(loc: Location) -> list[str]:
    """The keys the model allows at `loc` (pydantic's, tags included), or [] where it cannot tell."""
    kind = _kind_at(loc)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return list(kind.model_fields)
    return []


def _kind_at(loc: Location) -> Any:
    kind: Any = BastionConfig
    for part in loc:
        members = _tagged_members(kind)
        kind = members.get(str(part)) if members else _child(kind, part)
    return kind


def _child(kind: Any, part: int | str) -> Any:
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        field = kind.model_fields.get(str(part))
        return _unwrap_optional(field.annotation) if field is not None else None
    return _unwrap_optional(_item_type(kind))


def _tagged_members(kind: Any) -> dict[str, type[BaseModel]]:
    """For a tagged union (`Annotated[A | B, Field(discriminator="type")]`): tag → member."""
    if get_origin(kind) is not Annotated:
        return {}
    union, *metadata = get_args(kind)
    tag = next(
        (getattr(m, "discriminator", None) for m in metadata if getattr(m, "discriminator", None)), None
    )
    if not isinstance(tag, str):
        return {}
    members: dict[str, type[BaseModel]] = {}
    for member in get_args(union):
        if isinstance(member, type) and issubclass(member, BaseModel) and tag in member.model_fields:
            for value in get_args(member.model_fields[tag].annotation):
                members[str(value)] = member
    return members


def _item_type(kind: Any) -> Any:
    args = get_args(kind)
    if get_origin(kind) is tuple and args:
        return args[0]
    if get_origin(kind) is dict and len(args) == 2:
        return args[1]
    return None


def _unwrap_optional(kind: Any) -> Any:
    if get_origin(kind) in (Union, types.UnionType):
        members = [arg for arg in get_args(kind) if arg is not type(None)]
        return members[0] if len(members) == 1 else None
    return kind
