"""The browser half of the authorization code flow: PKCE, the loopback callback, the checks.

RFC 8252 §7.3: the redirect URI is ``http://127.0.0.1:PORT/callback`` on a listener bound
to loopback only, for this one login. The authorization URL is checked before it is
opened (:func:`require_web_url`) and opened with :func:`webbrowser.open`, never a shell;
``--headless`` prints it on stderr instead. The callback must carry our ``state`` (CSRF,
RFC 6749 §10.12) and, when present or promised, the issuer's exact ``iss`` (RFC 9207 mix-up).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
import sys
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from ._errors import ConnectError
from ._urls import require_web_url
from .discovery import AuthServerMetadata

__all__ = [
    "HEADLESS_PROMPT",
    "CallbackListener",
    "Pkce",
    "authorization_url",
    "check_callback",
    "open_in_browser",
]

log = logging.getLogger(__name__)

HEADLESS_PROMPT: Final = "mcp-bastion connect: to authorize, open this URL in a browser: "
CALLBACK_PATH: Final = "/callback"
MAX_REQUEST_HEAD: Final = 16 * 1024
_PAGE: Final = (
    b"<!doctype html><meta charset=utf-8><title>mcp-bastion connect</title>"
    b"<p>%s You can close this window.</p>"
)


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636 §4.1's 43-128
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


def authorization_url(
    metadata: AuthServerMetadata,
    *,
    client_id: str,
    redirect_uri: str,
    pkce: Pkce,
    state: str,
    resource: str,
    scope: str | None,
) -> str:
    """The URL to send the user to, after every check the endpoint must pass."""
    endpoint = require_web_url(metadata.authorization_endpoint, "authorization_endpoint")
    if "S256" not in metadata.code_challenge_methods:
        # MCP authorization §Authorization Code Protection: no S256 listed, no authorization.
        raise ConnectError(
            f"the authorization server {metadata.issuer} does not list PKCE S256 in "
            "code_challenge_methods_supported: refusing to authorize there"
        )
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "state": state,
        "resource": resource,
    }
    if scope:
        params["scope"] = scope
    separator = "&" if urlsplit(endpoint).query else "?"
    return require_web_url(endpoint + separator + urlencode(params), "the authorization URL")


def open_in_browser(url: str, *, headless: bool, opener: Callable[[str], bool] = webbrowser.open) -> None:
    """Show the user ``url``: the browser, or a line on stderr (stdout is the MCP channel)."""
    print(HEADLESS_PROMPT + url, file=sys.stderr, flush=True)
    if not headless and not opener(url):
        log.warning("no browser could be opened; open the URL above by hand")


def check_callback(params: dict[str, str], *, state: str, metadata: AuthServerMetadata) -> str:
    """The authorization code, once the callback proved it answers our request from our issuer."""
    got_state = params.get("state", "")
    if not hmac.compare_digest(got_state.encode(), state.encode()):
        raise ConnectError("the authorization callback's state does not match this login: refused (CSRF)")
    iss = params.get("iss")
    if iss is not None and iss != metadata.issuer:
        # RFC 9207 §2.4: compared as strings, no normalization; a mismatch is a mix-up attack.
        raise ConnectError(
            "the authorization response came from another issuer (RFC 9207 iss mismatch): refused"
        )
    if iss is None and metadata.iss_parameter_supported:
        raise ConnectError(
            "the authorization server promised an iss parameter and sent none (RFC 9207): refused"
        )
    if "error" in params:
        error = params["error"]
        shown = (
            error if error.isascii() and error.replace("_", "").isalnum() and len(error) < 64 else "invalid"
        )
        raise ConnectError(f"the authorization server refused the login ({shown})")
    code = params.get("code")
    if not code:
        raise ConnectError("the authorization callback carried no code")
    return code


class CallbackListener:
    """A one-shot HTTP listener on loopback for the authorization response."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[dict[str, str]] | None = None
        self.port = 0

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"

    async def start(self, port: int = 0) -> None:
        self._result = asyncio.get_running_loop().create_future()
        try:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        except OSError:
            if port == 0:
                raise ConnectError("cannot listen on loopback for the login callback") from None
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def wait(self, timeout: float) -> dict[str, str]:
        assert self._result is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), timeout)
        except TimeoutError:
            raise ConnectError(f"no login completed within {timeout:.0f} s") from None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        line = head[:MAX_REQUEST_HEAD].split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = line.partition(" ")
        target = rest.rpartition(" ")[0]
        parts = urlsplit(target)
        if method != "GET" or parts.path != CALLBACK_PATH:
            await _answer(writer, b"404 Not Found", b"Not the login callback.")
            return
        assert self._result is not None
        done = self._result.done()
        if not done:
            self._result.set_result(dict(parse_qsl(parts.query)))
        await _answer(writer, b"200 OK", b"This login was already used." if done else b"Login received.")


async def _answer(writer: asyncio.StreamWriter, status: bytes, text: bytes) -> None:
    body = _PAGE % text
    writer.write(
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/html; charset=utf-8\r\n"
        b"cache-control: no-store\r\nconnection: close\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


def new_state() -> str:
    return secrets.token_urlsafe(32)
