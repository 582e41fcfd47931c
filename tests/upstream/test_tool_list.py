"""Fetching an upstream's whole tool list over real sockets: both eras, pages, SSE, hostile answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from mcp_bastion.config.model import LimitsConfig
from mcp_bastion.demo.upstreams import build_demo_upstream
from mcp_bastion.errors import UpstreamError
from mcp_bastion.upstream import tool_list
from mcp_bastion.upstream.client import UpstreamClient
from mcp_bastion.upstream.tool_list import fetch_tool_list

from ..support.servers import read_body, serve_asgi

CREDENTIAL = (b"x-api-key", b"the-static-secret")
Answer = tuple[int, str, bytes]  # status, content type, body


def json_answer(doc: Any) -> Answer:
    return 200, "application/json", orjson.dumps(doc)


def result(request: dict[str, Any], value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request["id"], "result": value}


@dataclass
class Seen:
    method: str
    headers: dict[str, str]
    body: Any


@dataclass
class ScriptedUpstream:
    """An upstream on loopback whose every answer the test writes; it records what it got."""

    respond: Callable[[Seen], Answer]
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        request = Seen(
            scope["method"],
            {k.decode(): v.decode() for k, v in scope["headers"]},
            orjson.loads(raw) if raw else None,
        )
        self.seen.append(request)
        status, content_type, body = self.respond(request)
        headers = [(b"content-type", content_type.encode())] if content_type else []
        if request.body and request.body.get("method") == "initialize":
            headers.append((b"mcp-session-id", b"session-7"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def fetch(upstream: Any, credential: tuple[bytes, bytes] | None = CREDENTIAL) -> list[dict[str, Any]]:
    client = UpstreamClient(LimitsConfig())
    try:
        with serve_asgi(upstream) as server:
            return await fetch_tool_list(client.transport(f"{server.base_url}/mcp"), credential, 5)
    finally:
        await client.aclose()


def legacy_only(pages: dict[str | None, Answer]) -> Callable[[Seen], Answer]:
    """Refuses the stateless era as a 2025-only server does; serves `pages` by cursor."""

    def respond(request: Seen) -> Answer:
        if request.method == "DELETE":
            return 200, "", b""
        if request.headers.get("mcp-protocol-version") == "2026-07-28":
            return (
                400,
                "application/json",
                b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"no"}}',
            )
        body = request.body
        if "id" not in body:
            return 202, "", b""
        if body["method"] == "initialize":
            return json_answer(result(body, {"protocolVersion": "2025-11-25", "capabilities": {}}))
        return pages[body["params"].get("cursor")]

    return respond


def sse(*events: bytes) -> Answer:
    return 200, "text/event-stream", b"".join(events)


async def test_the_stateless_era_lists_the_sdk_servers_tools() -> None:
    tools = await fetch(build_demo_upstream())

    assert [tool["name"] for tool in tools] == ["echo", "add", "set_greeting", "reset_greeting"]
    assert tools[0]["annotations"]["readOnlyHint"] is True


async def test_a_session_era_server_is_listed_page_by_page_with_the_credential_on_every_request() -> None:
    head, tail = (
        b'{"jsonrpc":"2.0","id":"mcp-bastion-tools",',
        b'"result":{"tools":[{"name":"a"}],"nextCursor":"p2"}}',
    )
    pages: dict[str | None, Answer] = {
        # The first page as SSE, a notification before the answer, the JSON split over two data lines.
        None: sse(
            b'event: message\r\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\r\n\r\n',
            b"data: " + head + b"\ndata:" + tail + b"\n\n",
        ),
        "p2": json_answer(
            {"jsonrpc": "2.0", "id": "mcp-bastion-tools", "result": {"tools": [{"name": "b"}]}}
        ),
    }
    upstream = ScriptedUpstream(legacy_only(pages))

    tools = await fetch(upstream)

    assert [tool["name"] for tool in tools] == ["a", "b"]
    assert all(seen.headers.get("x-api-key") == "the-static-secret" for seen in upstream.seen)
    session = [seen for seen in upstream.seen if seen.headers.get("mcp-protocol-version") == "2025-11-25"]
    assert [s.body["method"] if s.body else s.method for s in session] == [
        "notifications/initialized",
        "tools/list",
        "tools/list",
        "DELETE",
    ]
    assert all(s.headers["mcp-session-id"] == "session-7" for s in session)


async def test_without_a_credential_no_authorization_is_sent() -> None:
    upstream = ScriptedUpstream(lambda r: json_answer(result(r.body, {"tools": [{"name": "a"}]})))

    await fetch(upstream, credential=None)

    assert all("authorization" not in s.headers and "x-api-key" not in s.headers for s in upstream.seen)


async def test_entries_that_are_not_named_tools_are_dropped() -> None:
    listed = [{"name": "ok"}, {"name": 7}, "tool", None, {"title": "no name"}, [{"name": "nested"}]]
    upstream = ScriptedUpstream(lambda r: json_answer(result(r.body, {"tools": listed})))

    assert await fetch(upstream) == [{"name": "ok"}]


async def test_an_upstream_error_is_reported_in_our_words_only() -> None:
    def respond(request: Seen) -> Answer:
        error = {"code": -32000, "message": "UPSTREAM-INTERNAL-DETAIL"}
        return json_answer({"jsonrpc": "2.0", "id": request.body.get("id"), "error": error})

    with pytest.raises(UpstreamError) as caught:
        await fetch(ScriptedUpstream(respond))

    assert caught.value.message == "upstream answered tools/list with an error"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((401, "application/json", b'{"error":"invalid_token"}'), "upstream answered HTTP 401"),
        ((302, "text/html", b"<a href=http://169.254.169.254/>"), "upstream answered HTTP 302"),
        (
            (200, "text/html", b"<html>UPSTREAM-PAGE</html>"),
            "upstream answered with neither JSON nor an event stream",
        ),
        ((200, "application/json", b"not json UPSTREAM-TEXT"), "upstream sent no tools/list result"),
        (
            (200, "application/json", b'{"jsonrpc":"2.0","id":"other","result":{"tools":[]}}'),
            "upstream sent no tools/list result",
        ),
    ],
    ids=["401", "redirect", "html", "not-json", "another-id"],
)
async def test_a_useless_answer_in_both_eras_is_an_error(answer: Answer, message: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        await fetch(ScriptedUpstream(lambda r: answer if r.method == "POST" else (200, "", b"")))

    assert caught.value.message == message


async def test_each_era_says_what_went_wrong_when_they_differ() -> None:
    def respond(request: Seen) -> Answer:
        if request.headers.get("mcp-protocol-version") == "2026-07-28":
            return 403, "", b""
        return 500, "", b""

    with pytest.raises(UpstreamError) as caught:
        await fetch(ScriptedUpstream(respond))

    assert (
        caught.value.message
        == "2026-07-28: upstream answered HTTP 403; 2025-11-25: upstream answered HTTP 500"
    )


async def test_an_answer_past_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tool_list, "MAX_BYTES", 4096)
    big = [{"name": f"tool{i}", "description": "x" * 100} for i in range(100)]
    upstream = ScriptedUpstream(lambda r: json_answer(result(r.body, {"tools": big})))

    with pytest.raises(UpstreamError) as caught:
        await fetch(upstream)

    assert caught.value.message == "the answer is larger than 4096 bytes"


async def test_endless_pages_stop_at_the_page_cap() -> None:
    upstream = ScriptedUpstream(
        lambda r: json_answer(result(r.body, {"tools": [{"name": "again"}], "nextCursor": "more"}))
    )

    tools = await fetch(upstream)

    assert len(tools) == tool_list.MAX_PAGES
    assert len(upstream.seen) == tool_list.MAX_PAGES


async def test_an_unreachable_upstream_is_an_error() -> None:
    with serve_asgi(ScriptedUpstream(lambda r: (200, "", b""))) as server:
        url = f"{server.base_url}/mcp"
    client = UpstreamClient(LimitsConfig())
    try:
        with pytest.raises(UpstreamError) as caught:
            await fetch_tool_list(client.transport(url), None, 5)
    finally:
        await client.aclose()

    assert caught.value.message == "upstream is unreachable"
