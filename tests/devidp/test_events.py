"""The event seam (devidp/_events.py): what the core tells a listener, and that it never holds
a token, code or secret. The facade turns these into audit events (tests/e2e/test_facade_*)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from mcp_bastion.devidp import DevIdpSettings, IdpEvent, StaticClient, build_devidp
from tests.support.servers import bind_loopback, serve_asgi

from .conftest import FakeClock, RunningIdp

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


class Recorder:
    def __init__(self) -> None:
        self.events: list[IdpEvent] = []

    def record(self, event: IdpEvent) -> None:
        self.events.append(event)


@pytest.fixture
def recorded() -> Iterator[tuple[RunningIdp, Recorder]]:
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = DevIdpSettings(
        issuer=f"{base}/idp",
        resources={f"{base}/mcp": ("notes:read",), f"{base}/up": ("notes:read",)},
        auto_approve="alice",
        clients=(StaticClient("gw", "gw-secret", (), (f"{base}/up",), exchange_from=(f"{base}/mcp",)),),
    )
    recorder, clock = Recorder(), FakeClock()
    idp = build_devidp(settings, clock=clock, events=recorder)
    with contextlib.ExitStack() as stack:
        stack.enter_context(serve_asgi(idp.app, sock=sock))
        http = stack.enter_context(httpx.Client(base_url=base, timeout=10))
        yield RunningIdp(idp, base, clock, http), recorder


def test_the_core_tells_registrations_tokens_reuse_and_revocations(
    recorded: tuple[RunningIdp, Recorder],
) -> None:
    running, recorder = recorded
    client_id = running.register()["client_id"]
    first = running.code_flow(client_id)
    refresh = {"grant_type": "refresh_token", "client_id": client_id, "resource": running.resource}
    second = running.token(**refresh, refresh_token=first["refresh_token"]).json()
    assert running.token(**refresh, refresh_token=first["refresh_token"]).status_code == 400  # reuse
    running.http.post(running.path("revoke"), data={"token": second["refresh_token"], "client_id": client_id})
    exchange = {
        "grant_type": GRANT,
        "subject_token": first["access_token"],
        "subject_token_type": ACCESS,
        "resource": f"{running.base}/up",
    }
    exchanged = running.http.post(running.path("token"), data=exchange, auth=("gw", "gw-secret")).json()

    seen = [(e.kind, e.action, e.allowed) for e in recorder.events]
    assert seen == [
        ("registration", "dcr", True),
        ("token", "authorization_code", True),
        ("token", "refresh_token", True),
        ("refresh_reuse", "refresh_token", False),
        ("token", "refresh_token", False),
        ("revocation", "revoke", True),
        ("token", GRANT, True),
    ]
    issued, refreshed = recorder.events[1], recorder.events[2]
    assert (issued.subject, issued.client_id, issued.resource) == ("alice", client_id, running.resource)
    assert issued.token_hash is not None
    assert len(issued.token_hash) == 32
    assert refreshed.token_hash != issued.token_hash
    assert recorder.events[-1].client_id == "gw"
    assert recorder.events[-1].subject == "alice"
    # Nothing presented or issued is in any event: only hashes name tokens.
    text = repr(recorder.events)
    for secret in (
        first["access_token"],
        first["refresh_token"],
        second["access_token"],
        second["refresh_token"],
        exchanged["access_token"],
        "gw-secret",
    ):
        assert secret not in text


def test_a_refusal_is_told_in_the_servers_words(recorded: tuple[RunningIdp, Recorder]) -> None:
    running, recorder = recorded
    form = {"grant_type": "authorization_code", "client_id": "nobody", "code": "guessed-code"}
    assert running.token(**form).status_code == 401
    [refused] = recorder.events
    assert (refused.kind, refused.allowed, refused.status) == ("token", False, 401)
    assert refused.reason == "invalid_client: unknown client"
    assert "guessed-code" not in repr(refused)
