"""The URL gate every network-supplied URL passes before connect fetches or opens it."""

from __future__ import annotations

import pytest

from mcp_bastion.connect import ConnectError
from mcp_bastion.connect._urls import require_web_url, require_within_reach, resource_covers
from mcp_bastion.connect.discovery import Challenge, _resource_metadata_urls


@pytest.mark.parametrize(
    "url",
    [
        "https://as.example.com/authorize",
        "https://as.example.com:8443/oauth2/v1/authorize?tenant=a-b_c.d~e",
        "http://127.0.0.1:8000/idp/authorize",
        "http://localhost/authorize",
        "http://[::1]:9/authorize",
    ],
)
def test_web_urls_pass(url: str) -> None:
    assert require_web_url(url, "authorization_endpoint") == url


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "file://localhost/etc/passwd",  # a host, so only the scheme check stops it
        "javascript:alert(1)",
        "ms-settings:",
        "//as.example.com/authorize",  # scheme-relative
        "/authorize",
        "https://as.example.com/a?$(id)",
        "https://as.example.com/a?`id`",
        "https://as.example.com/a|id",
        "https://as.example.com/a;id",
        "https://as.example.com/a b",
        "https://as.example.com/a\nb",
        "https://as.example.com/a\\b",
        "https://as.example.com/é",
        'https://as.example.com/a"&calc',
        "https://as.example.com/a>out",
        "http://as.example.com/authorize",  # http off loopback
        "http://127.0.0.1.nip.io/authorize",  # a name that resolves to loopback is not loopback
        "https://user:pw@as.example.com/authorize",
        "https://:443/",
        "https://as.example.com:99999/",
        "",
    ],
)
def test_hostile_urls_are_refused(url: str) -> None:
    with pytest.raises(ConnectError):
        require_web_url(url, "authorization_endpoint")


def test_a_non_string_is_refused() -> None:
    with pytest.raises(ConnectError):
        require_web_url(["https://as.example.com"], "authorization_endpoint")


@pytest.mark.parametrize(
    ("resource", "url", "covers"),
    [
        ("https://h.example/mcp", "https://h.example/mcp", True),
        ("https://h.example", "https://h.example/mcp", True),  # named by origin
        ("https://h.example/", "https://h.example/mcp", True),
        ("https://H.EXAMPLE:443/mcp", "https://h.example/mcp", True),
        ("https://h.example/a", "https://h.example/a/mcp", True),
        ("https://h.example/mc", "https://h.example/mcp", False),  # not a path segment
        ("https://h.example/other", "https://h.example/mcp", False),
        ("https://evil.example/mcp", "https://h.example/mcp", False),
        ("http://h.example/mcp", "https://h.example/mcp", False),
        ("https://h.example:8443/mcp", "https://h.example/mcp", False),
        ("https://h.example/mcp?x=1", "https://h.example/mcp", False),
        ("https://h.example/mcp/deeper", "https://h.example/mcp", False),
    ],
)
def test_resource_covers(resource: str, url: str, covers: bool) -> None:
    assert resource_covers(resource, url) is covers


@pytest.mark.parametrize(
    ("url", "server", "allowed"),
    [
        ("http://127.0.0.1:8080/prm", "https://mcp.example.com/mcp", False),  # a remote server's GET at us
        ("http://localhost/prm", "https://mcp.example.com/mcp", False),
        ("https://[::1]/prm", "https://mcp.example.com/mcp", False),
        ("https://auth.example.com/prm", "https://mcp.example.com/mcp", True),
        ("http://127.0.0.1:8080/prm", "http://127.0.0.1:9000/mcp", True),  # a local server's own helpers
        ("https://auth.example.com", "http://localhost:9000/mcp", True),
    ],
)
def test_a_remote_server_cannot_point_connect_at_this_machine(url: str, server: str, allowed: bool) -> None:
    if allowed:
        assert require_within_reach(url, server, "resource_metadata") == url
    else:
        with pytest.raises(ConnectError, match="points at this machine"):
            require_within_reach(url, server, "resource_metadata")


def test_discovery_refuses_a_loopback_resource_metadata_from_a_remote_server() -> None:
    challenge = Challenge(401, resource_metadata="http://127.0.0.1:1/.well-known/oauth-protected-resource")
    with pytest.raises(ConnectError, match="points at this machine"):
        _resource_metadata_urls("https://mcp.example.com/mcp", challenge)
