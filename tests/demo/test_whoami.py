"""The whoami sample upstream checks what it receives, so the demo shows a pass-through."""

from __future__ import annotations

from mcp_bastion.demo.whoami import ReceivedTokens
from mcp_bastion.devidp import DevIdpSettings, build_devidp
from tests.support.servers import bind_loopback, serve_asgi


async def test_only_a_token_of_the_idp_for_this_upstream_is_accepted() -> None:
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    upstream, gateway = "http://127.0.0.1:9/mcp", f"{base}/whoami/mcp"
    idp = build_devidp(DevIdpSettings(issuer=f"{base}/idp", resources={upstream: ("r",), gateway: ("r",)}))
    stranger = build_devidp(DevIdpSettings(issuer=f"{base}/idp", resources={upstream: ("r",)}))
    tokens = ReceivedTokens(f"{base}/idp", upstream)
    with serve_asgi(idp.app, sock=sock):
        good = idp.issue_access_token(subject="alice", resource=upstream, scopes=("r",))
        report = await tokens.report({"authorization": f"Bearer {good}"})
        assert report["accepted"] is True
        assert report["sub"] == "alice"
        assert good not in str(report)
        # The client's own token, passed through, names the gateway: shown, not accepted.
        passed = idp.issue_access_token(subject="alice", resource=gateway, scopes=("r",))
        report = await tokens.report({"authorization": f"Bearer {passed}"})
        assert report["accepted"] is False
        assert "another audience" in report["problem"]
        forged = stranger.issue_access_token(subject="alice", resource=upstream, scopes=("r",))
        assert (await tokens.report({"authorization": f"Bearer {forged}"}))["accepted"] is False
        assert (await tokens.report({}))["problem"] == "no bearer token was received"
