"""Redirect URIs: what may be registered, and how a request's URI is matched.

Registration accepts https URIs, and http only on a loopback host (MCP authorization:
"localhost or HTTPS"; RFC 8252 §7.3). Matching is exact string comparison (RFC 9700
§4.1.3), except that a loopback URI's port may differ (RFC 8252 §7.3: native apps get an
ephemeral port at run time). Everything here is pure.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from ..errors import OAuthError
from ._policy import MAX_URI_CHARS

LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")

# RFC 3986 characters minus '#': a redirect URI MUST NOT have a fragment (RFC 6749 §3.1.2).
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]+")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
# The path must be empty or start with '/', so "http://127.0.0.1@evil.example" cannot pass.
_LOOPBACK = re.compile(
    r"http://(127\.0\.0\.1|\[::1\]|localhost)(?::([0-9]{1,5}))?((?:/[^?#]*)?)(?:\?([^#]*))?"
)


def check_registrable(uri: object) -> str:
    """Return ``uri`` if a client may register it, else raise ``invalid_redirect_uri``."""
    problem = _registration_problem(uri)
    if problem is not None:
        raise OAuthError("invalid_redirect_uri", problem)
    assert isinstance(uri, str)
    return uri


def _registration_problem(uri: object) -> str | None:
    if not isinstance(uri, str) or not uri:
        return "each redirect URI must be a non-empty string"
    if len(uri) > MAX_URI_CHARS:
        return f"redirect URIs are limited to {MAX_URI_CHARS} characters"
    if _URI_CHARS.fullmatch(uri) is None or _BAD_PERCENT.search(uri):
        return "redirect URI has characters outside RFC 3986, or a fragment"
    if uri.startswith("https://"):
        return _https_problem(uri)
    if uri.startswith("http://"):
        return None if _loopback_parts(uri) else "http redirect URIs must use 127.0.0.1, [::1] or localhost"
    return "redirect URIs must be https, or http on a loopback host"


def _https_problem(uri: str) -> str | None:
    parts = urlsplit(uri)
    if "@" in parts.netloc:
        return "redirect URIs must not contain userinfo"
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    try:
        port = parts.port
    except ValueError:
        return "redirect URI has an invalid port"
    if port == 0 or not _valid_host(host):
        return "redirect URI has an invalid host"
    return None


def _valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    return _HOSTNAME.fullmatch(host) is not None


def _loopback_parts(uri: str) -> tuple[str, str, str | None] | None:
    """(host, path, query) of a loopback http URI with a valid port, else None."""
    match = _LOOPBACK.fullmatch(uri)
    if match is None:
        return None
    port = match.group(2)
    if port is not None and not 0 < int(port) < 65536:
        return None
    return match.group(1), match.group(3), match.group(4)


def matches(registered: Sequence[str], requested: str) -> bool:
    """Whether ``requested`` is one of ``registered``: exact, or loopback differing by port only."""
    if requested in registered:
        return True
    wanted = _loopback_parts(requested)
    return wanted is not None and any(_loopback_parts(uri) == wanted for uri in registered)
