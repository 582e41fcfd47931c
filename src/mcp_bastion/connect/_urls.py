"""Which URLs `connect` will contact or open, decided before anything contacts or opens them.

mcp-remote's CVE-2025-6514: an authorization server advertised an
``authorization_endpoint`` that the client handed to the OS's "open" command, which ran
it. Here every URL from the network is checked first: http(s) only, https unless the
host is loopback, no credentials, no whitespace, control or shell metacharacters, and
the browser is opened with :func:`webbrowser.open` (never a shell).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import SplitResult, urlsplit

from ._errors import ConnectError

__all__ = ["is_loopback", "require_web_url", "require_within_reach", "resource_covers"]

LOOPBACK_NAMES: Final = frozenset({"localhost"})
# Characters a shell, `cmd.exe` or an `open`/`xdg-open` wrapper could act on, and anything
# that is not printable ASCII (RFC 3986 URLs are ASCII; an IRI must arrive percent-encoded).
_UNSAFE: Final = re.compile(r"[^\x21-\x7e]|[\"'`$;|<>\\^{}]")


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_web_url(url: object, what: str) -> str:
    """``url`` if it is an absolute http(s) URL safe to fetch or open, else :class:`ConnectError`."""
    if not isinstance(url, str) or not url:
        raise ConnectError(f"{what} is missing or not a string")
    if _UNSAFE.search(url):
        raise ConnectError(
            f"{what} contains characters no URL should (whitespace, quotes or shell metacharacters)"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConnectError(f"{what} is not a valid URL") from None
    if parts.scheme not in ("https", "http"):
        raise ConnectError(f"{what} must be an http(s) URL, not {parts.scheme or 'a relative one'!r}")
    if not parts.hostname:
        raise ConnectError(f"{what} has no host")
    if parts.username is not None or parts.password is not None:
        raise ConnectError(f"{what} must not carry credentials")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        # OAuth 2.1 §1.5: tokens and codes travel over TLS; loopback is the only exception.
        raise ConnectError(f"{what} must use https (http is allowed for loopback hosts only)")
    del port
    return url


def require_within_reach(url: object, server_url: str, what: str) -> str:
    """:func:`require_web_url`, and a loopback URL only when the MCP server itself is on
    loopback: a remote server must not point this machine at its own local services (each
    URL it names here is fetched with a GET before anything else is checked)."""
    checked = require_web_url(url, what)
    if is_loopback(urlsplit(checked).hostname) and not is_loopback(urlsplit(server_url).hostname):
        raise ConnectError(f"{what} points at this machine (a loopback address) while the server is remote")
    return checked


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    default = 443 if parts.scheme == "https" else 80
    return (parts.scheme, (parts.hostname or "").lower(), parts.port or default)


def resource_covers(resource: str, server_url: str) -> bool:
    """Whether a PRM ``resource`` identifies ``server_url`` (RFC 9728 §3.3).

    Same origin, and the resource's path is the URL's path or one of its parent paths
    (a server may name itself by origin, ``https://host``, while serving ``/mcp``).
    """
    try:
        res, url = urlsplit(resource), urlsplit(server_url)
        if _origin(res) != _origin(url) or res.query or res.fragment:
            return False
    except ValueError:
        return False
    base = res.path.rstrip("/")
    return url.path == res.path or url.path.rstrip("/") == base or url.path.startswith(base + "/")
