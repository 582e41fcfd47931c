"""An upstream that misbehaves on request: each tool name is a fault (UP-01 … UP-04)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

from .servers import read_body

SECRET_HOST = "db-7.internal.corp"  # must never reach a client


class UpstreamDropped(Exception):
    """Raised inside the fixture to make uvicorn abort the connection mid-response."""


@dataclass
class FaultyUpstream:
    requests: int = 0
    aborted: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        self.requests += 1
        doc = orjson.loads(body)
        rid = doc.get("id")
        fault = (doc.get("params") or {}).get("name", "")
        if doc.get("method") == "tools/list":
            tools = [
                {"name": n, "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}}
                for n in FAULTS
            ]
            await _json(send, 200, {"jsonrpc": "2.0", "id": rid, "result": {"tools": tools}})
        elif fault == "html_502":
            await _raw(send, 502, b"text/html", f"<h1>Bad Gateway</h1><p>{SECRET_HOST}</p>".encode())
        elif fault == "stack_trace_500":
            await _raw(
                send,
                500,
                b"application/json",
                orjson.dumps({"trace": f"Traceback ... connect({SECRET_HOST})"}),
            )
        elif fault == "invalid_json":
            await _raw(send, 200, b"application/json", f"{{not json {SECRET_HOST}".encode())
        elif fault == "sse_drop":
            note = {
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {"progressToken": 1, "progress": 1},
            }
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + orjson.dumps(note) + b"\n\n",
                    "more_body": True,
                }
            )
            raise UpstreamDropped("the upstream process dies mid-stream")  # uvicorn drops the connection
        elif fault == "untyped_body":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send(
                {"type": "http.response.body", "body": f"Authorization was ... {SECRET_HOST}".encode()}
            )
        elif fault == "accepted_with_body":
            await _raw(send, 202, b"application/json", f'{{"leak": "{SECRET_HOST}"}}'.encode())
        elif fault == "redirect":
            location = b"http://169.254.169.254/latest/meta-data/"
            await send({"type": "http.response.start", "status": 302, "headers": [(b"location", location)]})
            await send({"type": "http.response.body", "body": b""})
        elif fault == "redirect_with_json":
            headers = [
                (b"content-type", b"application/json"),
                (b"location", f"http://{SECRET_HOST}/".encode()),
            ]
            await send({"type": "http.response.start", "status": 307, "headers": headers})
            await send({"type": "http.response.body", "body": orjson.dumps(_ok(rid, SECRET_HOST))})
        elif fault == "rpc_error_400":
            error = {"code": -32602, "message": "Invalid params: no such argument"}
            await _json(send, 400, {"jsonrpc": "2.0", "id": rid, "error": error})
        elif fault == "result_with_400":
            await _json(send, 400, _ok(rid, SECRET_HOST))
        elif fault == "not_found_404":
            await _raw(send, 404, b"text/plain", f"no route on {SECRET_HOST}".encode())
        elif fault == "teapot_418":
            await _raw(send, 418, b"text/plain", SECRET_HOST.encode())
        elif fault == "wrong_id":
            await _json(send, 200, {"jsonrpc": "2.0", "id": "someone-else", "result": {"content": []}})
        elif fault == "sse_wrong_and_duplicate_ids":
            await self._sse(
                send,
                [
                    {"jsonrpc": "2.0", "id": "someone-else", "result": {}},
                    _ok(rid, "first"),
                    _ok(rid, "second"),
                ],
            )
        elif fault == "error_wrong_id":
            await _json(send, 200, _error("someone-else"))
        elif fault == "batch_for_others":
            # One answer of ours among answers (results and errors) to other callers' requests.
            others = [_ok("someone-else", SECRET_HOST), _error("another-one"), _error(rid), _ok(rid, "again")]
            await _raw(send, 200, b"application/json", orjson.dumps([_ok(rid, "mine"), *others]))
        elif fault == "batch_only_for_others":
            await _raw(send, 200, b"application/json", orjson.dumps([_ok("someone-else", SECRET_HOST)]))
        elif fault in NOT_JSON_RPC:
            await _raw(send, 200, b"application/json", NOT_JSON_RPC[fault])
        elif fault == "sse_errors_wrong_and_duplicate_ids":
            await self._sse(send, [_error("someone-else"), _error(rid), _error(rid), _ok(rid, "late")])
        elif fault == "sse_not_json_rpc":
            events = [
                f"Traceback: {SECRET_HOST}".encode(),
                *NOT_JSON_RPC.values(),
                orjson.dumps(_ok(rid, "mine")),
            ]
            await self._sse_raw(send, events)
        elif fault == "huge_json":
            await self._endless(
                send,
                receive,
                b"application/json",
                b'{"jsonrpc":"2.0","id":1,"result":{"pad":"' + b"x" * 65536,
            )
        elif fault == "endless_sse":
            note = orjson.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {"progressToken": 1, "progress": 1},
                }
            )
            await self._endless(send, receive, b"text/event-stream", b"data: " + note + b"\n\n")
        else:
            await _json(send, 200, _ok(rid, "fine"))

    async def _sse(self, send: Any, messages: list[dict[str, Any]]) -> None:
        await self._sse_raw(send, [orjson.dumps(message) for message in messages])

    async def _sse_raw(self, send: Any, events: list[bytes]) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for data in events:
            await send({"type": "http.response.body", "body": b"data: " + data + b"\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _endless(self, send: Any, receive: Any, content_type: bytes, chunk: bytes) -> None:
        """Sends `chunk` until the gateway hangs up (uvicorn reports that through receive)."""

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.aborted.set()

        watcher = asyncio.ensure_future(watch())
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]}
        )
        for _ in range(1_000_000):  # ~64 GB at most: bounded, but far past any cap
            if self.aborted.is_set():
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0)  # let the disconnect be noticed between chunks
        watcher.cancel()
        await send({"type": "http.response.body", "body": b""})


FAULTS = (
    "sse_drop",
    "untyped_body",
    "accepted_with_body",
    "redirect",
    "redirect_with_json",
    "rpc_error_400",
    "result_with_400",
    "not_found_404",
    "teapot_418",
    "html_502",
    "stack_trace_500",
    "invalid_json",
    "wrong_id",
    "error_wrong_id",
    "batch_for_others",
    "batch_only_for_others",
    "bare_string",
    "bare_number",
    "neither_request_nor_response",
    "sse_wrong_and_duplicate_ids",
    "sse_errors_wrong_and_duplicate_ids",
    "sse_not_json_rpc",
    "huge_json",
    "endless_sse",
    "fine",
)


# JSON that is no JSON-RPC message: each is the whole answer of the fault of its name.
NOT_JSON_RPC = {
    "bare_string": orjson.dumps(f"error at {SECRET_HOST}"),
    "bare_number": b"500",
    "neither_request_nor_response": orjson.dumps({"jsonrpc": "2.0", "id": 41, "host": SECRET_HOST}),
}


def _error(rid: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32000, "message": f"failed at {SECRET_HOST}"}}


def _ok(rid: Any, text: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": text}]}}


async def _json(send: Any, status: int, doc: dict[str, Any]) -> None:
    await _raw(send, status, b"application/json", orjson.dumps(doc))


async def _raw(send: Any, status: int, content_type: bytes, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]}
    )
    await send({"type": "http.response.body", "body": body})
