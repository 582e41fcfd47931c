"""`connect` refuses hostile servers before it opens, sends or stores anything.

Each test runs the real relay and authorizer against :mod:`hostile_server` on loopback,
with a browser that records what it was asked to open and follows it. The proof of each
refusal is what did *not* happen: no browser opened, no code exchanged, no token stored.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_bastion.connect.oauth import AuthOptions, Authorizer
from mcp_bastion.connect.relay import Relay

from .hostile_server import HONEST, Misbehaviour, running_hostile_server

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}


class RecordingBrowser:
    """``webbrowser.open``'s stand-in: records the URL and follows it from another thread."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.threads: list[threading.Thread] = []

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        thread = threading.Thread(target=self._follow, args=(url,), daemon=True)
        thread.start()
        self.threads.append(thread)
        return True

    @staticmethod
    def _follow(url: str) -> None:
        with httpx.Client(follow_redirects=True, timeout=10, trust_env=False) as http:
            http.get(url)


async def _initialize(url: str, store: Path, browser: RecordingBrowser) -> list[Any]:
    written: list[Any] = []

    async def write(message: Any) -> None:
        written.append(message)

    options = AuthOptions(store_path=store, login_timeout_s=10)
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        relay = Relay(http, url, Authorizer(http, url, options, opener=browser), write)
        await asyncio.wait_for(relay.forward(INITIALIZE), 20)
    for thread in browser.threads:
        thread.join(10)
    return written


def _error_text(written: list[Any]) -> str:
    [answer] = written
    assert answer["id"] == 1
    return str(answer["error"]["message"])


async def test_an_honest_server_is_reached(tmp_path: Path) -> None:
    # The control for every test below: the same server, behaving, completes the flow.
    browser = RecordingBrowser()
    with running_hostile_server(HONEST) as server:
        written = await _initialize(server.url, tmp_path / "t.json", browser)
    assert written == [{"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}]
    assert len(browser.opened) == 1
    [token_request] = server.token_requests
    assert token_request["code_verifier"]
    assert token_request["resource"] == server.url


@pytest.mark.parametrize(
    "endpoint",
    [
        "file:///etc/passwd",
        "file://localhost/etc/passwd",
        "javascript:alert(document.cookie)",
        "{base}/authorize?x=$(touch /tmp/pwned)",  # CVE-2025-6514: shell substitution
        "{base}/authorize?x=`id`",
        "{base}/authorize&calc.exe|whoami",
        "{base}/authorize;rm -rf ~",
        "http://as.example.com/authorize",  # plain http off loopback: codes in clear text
        "https://user:pass@as.example.com/authorize",
    ],
)
async def test_a_hostile_authorization_endpoint_is_never_opened(endpoint: str, tmp_path: Path) -> None:
    browser = RecordingBrowser()
    with running_hostile_server(Misbehaviour(authorization_endpoint=endpoint)) as server:
        written = await _initialize(server.url, tmp_path / "t.json", browser)
    assert "authorization_endpoint" in _error_text(written)
    assert browser.opened == []
    assert server.authorize_requests == []
    assert not (tmp_path / "t.json").exists()


async def test_an_authorization_server_without_s256_is_refused(tmp_path: Path) -> None:
    browser = RecordingBrowser()
    with running_hostile_server(Misbehaviour(code_challenge_methods=("plain",))) as server:
        written = await _initialize(server.url, tmp_path / "t.json", browser)
    assert "S256" in _error_text(written)
    assert browser.opened == []


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        (Misbehaviour(state="forged-state"), "state"),  # CSRF: a callback for another login
        (Misbehaviour(iss_in_redirect="https://evil.example.com"), "RFC 9207"),  # mix-up
        (Misbehaviour(iss_in_redirect="{base}/"), "RFC 9207"),  # no normalization (RFC 9207 §2.4)
        (Misbehaviour(iss_in_redirect=None), "RFC 9207"),  # promised, then missing
        (Misbehaviour(iss_supported=False, iss_in_redirect="https://evil.example.com"), "RFC 9207"),
    ],
)
async def test_a_hostile_callback_is_refused_before_the_code_is_used(
    behaviour: Misbehaviour, reason: str, tmp_path: Path
) -> None:
    browser = RecordingBrowser()
    with running_hostile_server(behaviour) as server:
        written = await _initialize(server.url, tmp_path / "t.json", browser)
    assert reason in _error_text(written)
    assert len(server.authorize_requests) == 1  # the login happened…
    assert server.token_requests == []  # …but its code was never exchanged


async def test_protected_resource_metadata_for_another_resource_is_refused(tmp_path: Path) -> None:
    browser = RecordingBrowser()
    behaviour = Misbehaviour(prm_resource="https://other.example.com/mcp")
    with running_hostile_server(behaviour) as server:
        written = await _initialize(server.url, tmp_path / "t.json", browser)
    assert "RFC 9728" in _error_text(written)
    assert server.metadata_requests == 0  # its authorization server was not even asked
    assert browser.opened == []


async def test_authorization_server_metadata_for_another_issuer_is_refused(tmp_path: Path) -> None:
    browser = RecordingBrowser()
    with running_hostile_server(Misbehaviour(metadata_issuer="https://evil.example.com")) as server:
        written = await _initialize(server.url, tmp_path / "t.json", browser)
    assert "issuer" in _error_text(written)
    assert browser.opened == []
