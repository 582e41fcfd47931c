"""URLs and addresses every part shares: the public resource URL, its path, and loopback.

The resource URL is byte-identical in the PRM `resource`, a token's `aud` and the 401
challenge (RFC 9728 §3.3, RFC 8707): one function builds it. `is_loopback` decides what
development mode may reach; it never resolves a name, so a name that merely looks like an
address is not one.
"""

from __future__ import annotations

import pytest

from mcp_bastion.urls import is_loopback, path_of, resource_url


@pytest.mark.parametrize(
    ("base", "server", "url"),
    [
        ("https://gw.example", "github", "https://gw.example/github/mcp"),
        ("https://gw.example/prefix", "wiki", "https://gw.example/prefix/wiki/mcp"),
        ("http://127.0.0.1:8000", "demo", "http://127.0.0.1:8000/demo/mcp"),
        ("https://[::1]:8443", "a-b_c", "https://[::1]:8443/a-b_c/mcp"),
    ],
)
def test_resource_url(base: str, server: str, url: str) -> None:
    assert resource_url(base, server) == url


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://gw.example/github/mcp", "/github/mcp"),
        ("https://gw.example/prefix/wiki/mcp", "/prefix/wiki/mcp"),
        ("http://127.0.0.1:8000/demo/mcp", "/demo/mcp"),
        (
            "https://gw.example/.well-known/oauth-protected-resource/github/mcp",
            "/.well-known/oauth-protected-resource/github/mcp",
        ),
        ("https://gw.example", "/"),
        ("https://gw.example/", "/"),
        ("https://gw.example/a/mcp?x=1#f", "/a/mcp"),  # a request line's path has neither
    ],
)
def test_path_of(url: str, path: str) -> None:
    assert path_of(url) == path


def test_the_route_path_is_the_resource_urls_path() -> None:
    assert path_of(resource_url("https://gw.example/base", "s1")) == "/base/s1/mcp"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.0.0.2", True),  # all of 127.0.0.0/8 (RFC 1122 §3.2.1.3)
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("0:0:0:0:0:0:0:1", True),
        ("[0:0:0:0:0:0:0:1]", True),
        # Names that merely start like a loopback address are names: only DNS could say.
        ("127.0.0.1.nip.io", False),
        ("127.attacker.example", False),
        ("127.0.0.1.", False),
        ("1270.0.0.1", False),
        ("localhost.attacker.example", False),
        ("localhost.", False),
        ("LOCALHOST", False),  # callers pass a lower-cased hostname (urlsplit does that)
        ("sub.localhost", False),
        # Other addresses.
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("128.0.0.1", False),
        ("", False),
        ("[]", False),
        ("127.1", False),  # shorthand that some resolvers expand; not an address literal here
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
