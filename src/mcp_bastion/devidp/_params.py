"""Reading OAuth parameters from query strings and urlencoded bodies, with hard caps.

RFC 6749 §3.1/§3.2: parameters "MUST NOT be included more than once", so a repeated
name is ``invalid_request`` -- except ``resource``, which RFC 8707 lets repeat and whose
own rule (exactly one) answers ``invalid_target``. Bodies are capped before parsing and
only ``application/x-www-form-urlencoded`` is read: multipart is never parsed (Starlette
CVE-2024-47874, CVE-2023-30798).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request

from ..errors import OAuthError
from ._policy import MAX_BODY_BYTES, MAX_FIELDS, MAX_PARAM_CHARS

FORM_TYPE = "application/x-www-form-urlencoded"
_MULTI = frozenset({"resource"})


@dataclass(frozen=True)
class Params:
    """Parsed parameters: each name once, plus the repeatable ``resource`` values."""

    values: Mapping[str, str]
    resources: tuple[str, ...] = ()

    def get(self, name: str) -> str | None:
        """The value of ``name``; an empty value counts as omitted (RFC 6749 §3.1)."""
        return self.values.get(name) or None


def parse_params(raw: str) -> Params:
    """Parse an urlencoded string; duplicates, too many fields or bad encoding → ``invalid_request``."""
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except ValueError as exc:  # too many fields, or percent-escapes that are not UTF-8
        raise OAuthError("invalid_request", "malformed or oversized parameter list") from exc
    values: dict[str, str] = {}
    resources: list[str] = []
    for name, value in pairs:
        if len(value) > MAX_PARAM_CHARS:
            raise OAuthError("invalid_request", f"parameter {name[:40]!r} is too long")
        if name in _MULTI:
            resources.extend([value] if value else [])
        elif name in values:
            raise OAuthError("invalid_request", f"parameter {name[:40]!r} is repeated")
        else:
            values[name] = value
    return Params(values, tuple(resources))


def parse_query(request: Request) -> Params:
    """The request's query parameters."""
    try:
        raw = request.scope["query_string"].decode("ascii")
    except UnicodeDecodeError as exc:
        raise OAuthError("invalid_request", "query string is not ASCII") from exc
    return parse_params(raw)


async def read_form(request: Request) -> Params:
    """The urlencoded body, read only up to the size cap (413 beyond it)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        raise OAuthError("invalid_request", f"the body must be {FORM_TYPE}")
    body = await read_capped_body(request)
    try:
        return parse_params(body.decode("ascii"))
    except UnicodeDecodeError as exc:
        raise OAuthError("invalid_request", "urlencoded bodies must be ASCII") from exc


async def read_capped_body(request: Request) -> bytes:
    """The body, refusing (413) a declared or actual size above the cap without reading on."""
    declared = request.headers.get("content-length")
    if declared is not None and (
        not (declared.isascii() and declared.isdigit() and len(declared) <= 20)
        or int(declared) > MAX_BODY_BYTES
    ):
        raise OAuthError("invalid_request", "request body too large", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise OAuthError("invalid_request", "request body too large", status=413)
        chunks.append(chunk)
    return b"".join(chunks)
