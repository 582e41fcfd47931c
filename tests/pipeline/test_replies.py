"""Errors become HTTP answers in one place: each branch of error_reply, stated literally."""

from __future__ import annotations

import orjson

from mcp_bastion.app import build_gateway
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.errors import (
    AuthorizationError,
    BastionError,
    InsufficientScope,
    InvalidToken,
    ProtocolError,
    UpstreamError,
)
from mcp_bastion.mcp.calls import Call
from mcp_bastion.pipeline.exchange import Exchange, read_headers
from mcp_bastion.pipeline.replies import error_reply
from mcp_bastion.trace import TraceContext

CONFIG = parse_config(
    {
        "public_base_url": "https://gw.example",
        "identity_providers": [{"name": "corp", "issuer": "https://idp.example"}],
        "servers": [{"name": "demo", "upstream": "http://127.0.0.1:9/mcp"}],
    }
)
ROUTE = next(iter(build_gateway(LoadedConfig(CONFIG, {})).routes.values()))


def _exchange_with_one_call(rid: int) -> Exchange:
    scope = {"type": "http", "method": "POST", "headers": []}
    ex = Exchange(scope, None, None, ROUTE, read_headers([], 1024), TraceContext.from_header(None))  # type: ignore[arg-type]
    ex.calls = (Call("tools/call", "t", rid),)
    return ex


def test_an_authorization_error_is_a_403_json_rpc_error_without_a_challenge() -> None:
    # Issue 9: AuthorizationError had no branch and became a 500.
    status, headers, body = error_reply(
        ROUTE, AuthorizationError("refused by policy"), _exchange_with_one_call(9)
    )
    assert status == 403
    assert dict(headers).get(b"www-authenticate") is None  # no step-up can fix a policy refusal
    assert orjson.loads(body) == {
        "jsonrpc": "2.0",
        "id": 9,
        "error": {"code": -32003, "message": "refused by policy"},
    }


def test_insufficient_scope_is_a_403_challenge_naming_the_scopes() -> None:
    status, headers, body = error_reply(
        ROUTE, InsufficientScope("needs more", scopes=("tools.write",)), _exchange_with_one_call(1)
    )
    assert status == 403
    www = dict(headers)[b"www-authenticate"].decode()
    assert 'error="insufficient_scope"' in www
    assert 'scope="tools.write"' in www
    assert orjson.loads(body)["scope"] == "tools.write"


def test_an_invalid_token_is_a_401_challenge_with_the_metadata_url() -> None:
    status, headers, _ = error_reply(ROUTE, InvalidToken("token signature is invalid"), None)
    assert status == 401
    www = dict(headers)[b"www-authenticate"].decode()
    assert 'resource_metadata="https://gw.example/.well-known/oauth-protected-resource/demo/mcp"' in www
    assert 'scope="tools.read"' in www


def test_protocol_upstream_and_unknown_errors_echo_the_calls_id() -> None:
    ex = _exchange_with_one_call(5)
    protocol = error_reply(ROUTE, ProtocolError("Invalid params", code=-32602), ex)
    upstream = error_reply(ROUTE, UpstreamError("upstream answered HTTP 302"), ex)
    unknown = error_reply(ROUTE, BastionError("internal error"), ex)
    assert [
        (r[0], orjson.loads(r[2])["id"], orjson.loads(r[2])["error"]["code"])
        for r in (protocol, upstream, unknown)
    ] == [
        (400, 5, -32602),
        (502, 5, -32603),
        (500, 5, -32603),
    ]
