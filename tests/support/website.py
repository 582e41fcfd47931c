"""A small website on loopback for a fetching plug-in to read: fixed pages, and a record of every
request that reached it (path and headers), so a test can say what was fetched and what was sent."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .servers import serve_asgi

# Robots Exclusion Protocol (RFC 9309): every agent may fetch everything.
ROBOTS_ALLOW_ALL = "User-agent: *\nAllow: /\n"


@dataclass
class Website:
    """`pages`: path -> (content type, body). Any other path is a 404."""

    pages: Mapping[str, tuple[str, str]]
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (path, headers)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with self._lock:
            self.seen.append((scope["path"], headers))
        content_type, body = self.pages.get(scope["path"], ("text/plain", "not found"))
        status = 200 if scope["path"] in self.pages else 404
        reply = [(b"content-type", content_type.encode())]
        await send({"type": "http.response.start", "status": status, "headers": reply})
        await send({"type": "http.response.body", "body": body.encode()})

    def requests(self) -> list[tuple[str, dict[str, str]]]:
        with self._lock:
            return list(self.seen)

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests()]


@contextlib.contextmanager
def running_website(pages: Mapping[str, tuple[str, str]]) -> Iterator[tuple[Website, str]]:
    """The site on 127.0.0.1, and its base URL (`http://127.0.0.1:PORT`)."""
    site = Website(pages)
    with serve_asgi(site, lifespan="off") as server:
        yield site, server.base_url
