"""Protocol eras and the 2026-07-28 header rules (-32020 HeaderMismatch, -32022 unsupported)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from mcp_bastion.errors import ProtocolError
from mcp_bastion.mcp.era import (
    HEADER_MISMATCH,
    MODERN_VERSIONS,
    UNSUPPORTED_VERSION,
    Era,
    check_modern_headers,
    decode_header_value,
    era_of,
)
from mcp_bastion.mcp.jsonrpc import Message

MODERN = Era("modern", "2026-07-28")
LEGACY = Era("legacy", "2025-11-25")
META = "io.modelcontextprotocol/protocolVersion"


def test_error_codes_are_the_specs() -> None:
    # 2026-07-28 schema: HEADER_MISMATCH = -32020, UNSUPPORTED_PROTOCOL_VERSION = -32022; the
    # tests below compare with the module's names, so the numbers themselves are pinned here.
    assert (HEADER_MISMATCH, UNSUPPORTED_VERSION) == (-32020, -32022)


@pytest.mark.parametrize(
    ("header", "expected", "batch"),
    [
        (None, Era("legacy", "2025-03-26"), True),
        ("2025-03-26", Era("legacy", "2025-03-26"), True),
        ("2024-11-05", Era("legacy", "2024-11-05"), False),
        ("2025-06-18", Era("legacy", "2025-06-18"), False),
        ("2025-11-25", Era("legacy", "2025-11-25"), False),
        ("2026-07-28", Era("modern", "2026-07-28"), False),
    ],
)
def test_era_of_known_versions(header: str | None, expected: Era, batch: bool) -> None:
    era = era_of(header)
    assert era == expected
    assert era.allows_batch is batch


@pytest.mark.parametrize(
    "header", ["2099-01-01", "", " 2026-07-28", "2026-07-28 ", "2026-7-28", "latest", "2025-11-25,2026-07-28"]
)
def test_era_of_unknown_version_lists_supported(header: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        era_of(header)
    error = caught.value
    assert (error.code, error.status, error.request_id) == (UNSUPPORTED_VERSION, 400, None)
    assert "Unsupported protocol version" in error.message
    # Only header-negotiated versions are offered; legacy ones are negotiated by `initialize`.
    assert error.data == {"supported": list(MODERN_VERSIONS), "requested": header}
    assert error.data["supported"] == ["2026-07-28"]


def test_era_of_truncates_the_echoed_version() -> None:
    with pytest.raises(ProtocolError) as caught:
        era_of("9" * 5000)
    assert caught.value.data["requested"] == "9" * 64


def _params(version: str | None = "2026-07-28", **params: Any) -> dict[str, Any]:
    if version is not None:
        params["_meta"] = {META: version}
    return params


def _call(name: Any = "echo", version: str | None = "2026-07-28", rid: Any = 7) -> Message:
    return Message("request", rid, "tools/call", _params(version, name=name))


def _mismatch(era: Era, message: Message, method: str | None, name: str | None) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        check_modern_headers(era, message, method, name)
    error = caught.value
    assert (error.code, error.status) == (HEADER_MISMATCH, 400)
    assert error.request_id == message.id
    assert error.message.startswith("Header mismatch: ")
    return error


def _b64(text: str) -> str:
    return "=?base64?" + base64.b64encode(text.encode()).decode() + "?="


@pytest.mark.parametrize(
    ("message", "method", "name"),
    [
        (_call(), "tools/call", "echo"),
        (Message("request", 1, "prompts/get", _params(name="greet")), "prompts/get", "greet"),
        (Message("request", 1, "resources/read", _params(uri="file:///a")), "resources/read", "file:///a"),
        (Message("request", 1, "tools/list", _params()), "tools/list", None),
        # A name header on a method that has none is ignored.
        (Message("request", 1, "tools/list", _params()), "tools/list", "whatever"),
        (
            Message("notification", None, "notifications/cancelled", _params()),
            "notifications/cancelled",
            None,
        ),
        (Message("notification", None, "notifications/cancelled", _params()), None, None),
        # The base64 sentinel (transports §Value Encoding examples).
        (_call("Hello, 世界"), "tools/call", "=?base64?SGVsbG8sIOS4lueVjA==?="),
        (_call(" padded "), "tools/call", "=?base64?IHBhZGRlZCA=?="),
        (_call("line1\nline2"), "tools/call", "=?base64?bGluZTEKbGluZTI=?="),
        (_call("=?base64?literal?="), "tools/call", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="),
        # Encoding is optional for plain values.
        (_call("echo"), "tools/call", _b64("echo")),
    ],
)
def test_modern_headers_that_agree_pass(message: Message, method: str | None, name: str | None) -> None:
    check_modern_headers(MODERN, message, method, name)


@pytest.mark.parametrize(
    ("message", "method", "name", "fragment"),
    [
        (_call(), None, "echo", "Mcp-Method header is required"),
        (_call(), "tools/list", "echo", "Mcp-Method header does not match the body method"),
        (_call(), "Tools/Call", "echo", "Mcp-Method header does not match the body method"),
        (_call(), "tools/call ", "echo", "Mcp-Method header does not match the body method"),
        (_call(), "tools/call", None, "Mcp-Name header is required for tools/call"),
        (_call(), "tools/call", "other", "Mcp-Name header does not match params.name"),
        # Values are case-sensitive.
        (_call("echo"), "tools/call", "Echo", "Mcp-Name header does not match params.name"),
        (_call("Echo"), "tools/call", "echo", "Mcp-Name header does not match params.name"),
        (_call("echo"), "tools/call", _b64("Echo"), "Mcp-Name header does not match params.name"),
        # The sentinel is lower-case and exact; anything else is a literal value.
        (_call("echo"), "tools/call", "=?BASE64?ZWNobw==?=", "Mcp-Name header does not match params.name"),
        (_call("echo"), "tools/call", "=?base64?ZWNobw==", "Mcp-Name header does not match params.name"),
        # A literal sentinel-shaped name must itself be encoded.
        (
            _call("=?base64?ZWNobw==?="),
            "tools/call",
            "=?base64?ZWNobw==?=",
            "Mcp-Name header does not match params.name",
        ),
        (_call("echo"), "tools/call", "=?base64?!!!!?=", "invalid base64 value"),
        (_call("echo"), "tools/call", "=?base64?ZWNobw?=", "invalid base64 value"),
        (_call("echo"), "tools/call", "=?base64?ZW Nobw==?=", "invalid base64 value"),
        (_call("echo"), "tools/call", "=?base64?/w==?=", "invalid base64 value"),
        # Non-ASCII header bytes (read as latin-1) are not base64: -32020, not a crash.
        (_call("echo"), "tools/call", "=?base64?ZWNob\xe9==?=", "invalid base64 value"),
        # Body values that are not strings never equal a header.
        (_call(5), "tools/call", "5", "Mcp-Name header does not match params.name"),
        (
            Message("request", 1, "resources/read", _params(uri="file:///a")),
            "resources/read",
            "file:///b",
            "Mcp-Name header does not match params.uri",
        ),
        (
            Message("request", 1, "prompts/get", _params(name="greet")),
            "prompts/get",
            None,
            "Mcp-Name header is required for prompts/get",
        ),
        # _meta protocolVersion must match the header's.
        (_call(version=None), "tools/call", "echo", "does not match _meta protocolVersion"),
        (_call(version="2025-11-25"), "tools/call", "echo", "does not match _meta protocolVersion"),
        (
            Message("request", 1, "tools/call", {"name": "echo", "_meta": "2026-07-28"}),
            "tools/call",
            "echo",
            "does not match _meta protocolVersion",
        ),
        (
            Message("notification", None, "notifications/cancelled", _params()),
            "notifications/progress",
            None,
            "Mcp-Method header does not match the body method",
        ),
        (
            Message("response", 4, "", None),
            None,
            None,
            "clients must not send JSON-RPC responses in protocol 2026-07-28",
        ),
    ],
)
def test_modern_header_mismatches(
    message: Message, method: str | None, name: str | None, fragment: str
) -> None:
    assert fragment in _mismatch(MODERN, message, method, name).message


@pytest.mark.parametrize(
    "message",
    [
        _call(version=None),
        _call(version="2025-11-25"),
        Message("request", 1, "tools/list", None),
        Message("response", 1, "", None),
        Message("request", 1, "tools/call", {"name": "echo", "_meta": ["2026-07-28"]}),
    ],
)
def test_legacy_era_ignores_mcp_headers(message: Message) -> None:
    check_modern_headers(LEGACY, message, "something/else", "mismatched")


@pytest.mark.parametrize("era", [LEGACY, Era("legacy", "2025-03-26")])
def test_modern_body_without_the_modern_header_is_refused(era: Era) -> None:
    error = _mismatch(era, _call(version="2026-07-28"), "tools/call", "echo")
    assert "MCP-Protocol-Version header is required for protocol 2026-07-28" in error.message


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ("plain", "plain"),
        ("", ""),
        ("=?base64??=", ""),
        ("=?base64?4pyT?=", "✓"),
        ("?=", "?="),
        ("=?base64?", "=?base64?"),
    ],
)
def test_decode_header_value(value: str, decoded: str) -> None:
    assert decode_header_value(value, _call()) == decoded


@pytest.mark.parametrize("name", ["caf\xe9", "a\x00b", "line\nbreak"])
def test_plain_mcp_name_with_characters_that_need_base64_is_refused(name: str) -> None:
    message = _call(name)
    error = _mismatch(Era("modern", "2026-07-28"), message, "tools/call", name)
    assert "must be base64-encoded" in error.message


def test_error_codes_are_the_specifications() -> None:
    # 2026-07-28 schema: HEADER_MISMATCH and UNSUPPORTED_PROTOCOL_VERSION, stated here rather
    # than read back from the module the other tests import them from.
    assert (HEADER_MISMATCH, UNSUPPORTED_VERSION) == (-32020, -32022)
