"""The login/consent page: escaping, framing headers, CSRF, decisions (AS-04, AS-14)."""

from __future__ import annotations

import re

import httpx
import pytest

from .conftest import MakeIdp, RunningIdp, query_of


@pytest.fixture
def interactive(make_idp: MakeIdp) -> RunningIdp:
    return make_idp(auto_approve=None, users={"alice": ("notes:read", "notes:write"), "bob": ("notes:read",)})


def _hidden(page: httpx.Response) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))


def _post(running: RunningIdp, fields: dict[str, str], http: httpx.Client | None = None) -> httpx.Response:
    return (http or running.http).post("/idp/consent", data=fields)


def _consent(running: RunningIdp, client_id: str, **overrides: str | None) -> dict[str, str]:
    page = running.authorize(client_id, **overrides)
    assert page.status_code == 200, page.text
    return _hidden(page)


def test_consent_page_content_and_headers(interactive: RunningIdp) -> None:
    client_id = interactive.register(client_name="Notes app")["client_id"]
    page = interactive.authorize(client_id, scope="notes:read notes:write")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "Notes app" in page.text
    assert interactive.resource in page.text
    assert "notes:read" in page.text
    assert "notes:write" in page.text
    assert 'name="username"' in page.text
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/idp/consent" in cookie


def test_approve_is_a_303_with_code_state_and_iss(interactive: RunningIdp) -> None:
    client_id = interactive.register()["client_id"]
    fields = _consent(interactive, client_id)
    response = _post(interactive, {**fields, "username": "bob", "decision": "approve"})
    assert response.status_code == 303
    query = query_of(response)
    assert query["state"] == "state-123"
    assert query["iss"] == interactive.issuer
    tokens = interactive.redeem(client_id, query["code"]).json()
    assert interactive.claims(tokens["access_token"])["sub"] == "bob"


def test_user_limits_apply_to_the_consented_grant(interactive: RunningIdp) -> None:
    client_id = interactive.register()["client_id"]
    fields = _consent(interactive, client_id, scope="notes:read notes:write")
    query = query_of(_post(interactive, {**fields, "username": "bob", "decision": "approve"}))
    assert interactive.redeem(client_id, query["code"]).json()["scope"] == "notes:read"
    fields = _consent(interactive, client_id, scope="notes:write")
    denied = query_of(_post(interactive, {**fields, "username": "bob", "decision": "approve"}))
    assert denied["error"] == "invalid_scope"


def test_deny_redirects_access_denied(interactive: RunningIdp) -> None:
    client_id = interactive.register()["client_id"]
    fields = _consent(interactive, client_id)
    response = _post(interactive, {**fields, "decision": "deny"})
    assert response.status_code == 303
    query = query_of(response)
    assert query["error"] == "access_denied"
    assert query["state"] == "state-123"
    assert query["iss"] == interactive.issuer


@pytest.mark.parametrize("username", ["mallory", "", "<b>alice</b>", "a" * 65])
def test_unknown_user_shows_the_page_again(interactive: RunningIdp, username: str) -> None:
    client_id = interactive.register()["client_id"]
    fields = _consent(interactive, client_id)
    response = _post(interactive, {**fields, "username": username, "decision": "approve"})
    assert response.status_code == 400
    assert "Unknown user" in response.text
    assert "<b>alice" not in response.text
    # The request is still pending: the user can correct the name.
    retry = _post(interactive, {**_hidden(response), "username": "alice", "decision": "approve"})
    assert retry.status_code == 303


def test_any_username_when_users_is_none(make_idp: MakeIdp) -> None:
    running = make_idp(auto_approve=None)
    client_id = running.register()["client_id"]
    fields = _consent(running, client_id, scope=None)
    query = query_of(_post(running, {**fields, "username": "carol@example.com", "decision": "approve"}))
    tokens = running.redeem(client_id, query["code"]).json()
    assert tokens["scope"] == "notes:read notes:write"
    assert running.claims(tokens["access_token"])["sub"] == "carol@example.com"


def test_bad_decision_value(interactive: RunningIdp) -> None:
    client_id = interactive.register()["client_id"]
    fields = _consent(interactive, client_id)
    assert _post(interactive, {**fields, "username": "alice", "decision": "maybe"}).status_code == 400
    assert _post(interactive, {**fields, "username": "alice"}).status_code == 400


def test_a_pending_request_is_answered_once(interactive: RunningIdp) -> None:
    client_id = interactive.register()["client_id"]
    fields = _consent(interactive, client_id)
    assert _post(interactive, {**fields, "username": "alice", "decision": "approve"}).status_code == 303
    again = _post(interactive, {**fields, "username": "alice", "decision": "approve"})
    assert again.status_code in (400, 403)
    assert "location" not in again.headers


def test_pending_request_expires(interactive: RunningIdp) -> None:
    client_id = interactive.register()["client_id"]
    fields = _consent(interactive, client_id)
    interactive.clock.advance(601)
    response = _post(interactive, {**fields, "username": "alice", "decision": "approve"})
    assert response.status_code == 400
    assert "location" not in response.headers


# -- AS-14 ------------------------------------------------------------------------------


def test_as14_consent_post_without_csrf_token_is_403(interactive: RunningIdp) -> None:
    client_id = interactive.register()["client_id"]
    fields = _consent(interactive, client_id)
    response = _post(
        interactive, {"request_id": fields["request_id"], "username": "alice", "decision": "approve"}
    )
    assert response.status_code == 403
    assert "location" not in response.headers


def test_as14_consent_post_with_wrong_csrf_token_is_403(interactive: RunningIdp) -> None:
    client_id = interactive.register()["client_id"]
    fields = _consent(interactive, client_id)
    forged = {**fields, "csrf_token": "A" * 43, "username": "alice", "decision": "approve"}
    assert _post(interactive, forged).status_code == 403


def test_as14_csrf_token_of_another_pending_request_is_403(interactive: RunningIdp) -> None:
    client_id = interactive.register()["client_id"]
    first = _consent(interactive, client_id)
    second = _consent(interactive, client_id)
    mixed = {"request_id": first["request_id"], "csrf_token": second["csrf_token"], "username": "alice"}
    assert _post(interactive, {**mixed, "decision": "approve"}).status_code == 403


def test_as14_cross_site_post_without_the_cookie_is_403(interactive: RunningIdp) -> None:
    # The attacker knows a pending request's form fields but posts from another browser.
    client_id = interactive.register()["client_id"]
    fields = _consent(interactive, client_id)
    with httpx.Client(base_url=interactive.base) as other_browser:
        response = _post(interactive, {**fields, "username": "alice", "decision": "approve"}, other_browser)
    assert response.status_code == 403


def test_as14_consent_is_asked_per_client(interactive: RunningIdp) -> None:
    first = interactive.register(client_name="First")["client_id"]
    fields = _consent(interactive, first)
    assert _post(interactive, {**fields, "username": "alice", "decision": "approve"}).status_code == 303
    second = interactive.register(client_name="Second")["client_id"]
    page = interactive.authorize(second)
    assert page.status_code == 200
    assert "Second" in page.text
    # ... and again for the first client: consent is never remembered.
    assert interactive.authorize(first).status_code == 200


def test_as14_consent_page_cannot_be_framed(interactive: RunningIdp) -> None:
    client_id = interactive.register()["client_id"]
    for response in (interactive.authorize(client_id), interactive.authorize("unknown")):
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"


# -- AS-04: what a client controls is escaped ---------------------------------------


def test_as04_client_name_is_escaped_and_stripped(interactive: RunningIdp) -> None:
    name = "<script>alert(1)</script>Good\u202eexe.gnp\u0000"
    client_id = interactive.register(client_name=name)["client_id"]
    page = interactive.authorize(client_id, state='"><img src=x>')
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;Good" in page.text
    assert "\u202e" not in page.text
    assert "\u0000" not in page.text
    assert "<img" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_as04_long_client_name_is_cut_for_display(interactive: RunningIdp) -> None:
    client_id = interactive.register(client_name="N" * 200)["client_id"]
    page = interactive.authorize(client_id)
    assert "N" * 80 not in page.text
    assert "N" * 79 + "…" in page.text


def test_error_page_escapes_what_it_echoes(running: RunningIdp) -> None:
    params = [("client_id", "x"), ("<script>", "1"), ("<script>", "2")]
    response = running.http.get("/idp/authorize", params=params)
    assert response.status_code == 400
    assert "&#x27;&lt;script&gt;&#x27; is repeated" in response.text
    assert "<script>" not in response.text
