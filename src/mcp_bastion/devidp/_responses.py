"""The few kinds of response the IdP sends, with the headers each must carry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..errors import OAuthError

#: RFC 6749 §5.1: token responses (and anything holding a secret) must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

#: Pages a user acts on: never framed (clickjacking, RFC 9700 §4.16), no script, no
#: referrer leaking the query string, no MIME sniffing.
PAGE_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def json_response(
    body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response that is never cached."""
    return Response(
        orjson.dumps(dict(body)),
        status_code=status,
        media_type="application/json",
        headers={**NO_STORE, **(headers or {})},
    )


def oauth_error_json(exc: OAuthError, headers: Mapping[str, str] | None = None) -> Response:
    """An RFC 6749 §5.2 error response."""
    return json_response({"error": exc.error, "error_description": exc.message}, exc.status, headers)


def html_page(body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """An HTML page with the anti-framing, no-script headers."""
    return HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def redirect_url(redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """``redirect_uri`` with ``params`` appended to its query (RFC 6749 §4.1.2)."""
    query = urlencode({name: value for name, value in params.items() if value is not None})
    return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}"


def redirect(url: str, status: int) -> RedirectResponse:
    """A redirect carrying a code or an error back to the client."""
    return RedirectResponse(url, status_code=status, headers={**NO_STORE, "Referrer-Policy": "no-referrer"})
