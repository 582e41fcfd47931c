"""The two HTML pages: consent (login) and error. Every client-supplied string is escaped.

A client's name is shown with control and bidirectional-override characters removed and
cut to a display length, so "<script>", U+202E tricks or 100 KB names cannot script or
spoof the page (AS-04).
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_DISPLAY_CHARS = 80
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem}"
    "code{word-break:break-all}.error{color:#a00}button{margin-right:.5rem}"
)


def display(value: str, limit: int = _DISPLAY_CHARS) -> str:
    """``value`` made safe to show: no control/format characters, cut, HTML-escaped."""
    visible = "".join(ch for ch in value if unicodedata.category(ch) not in ("Cc", "Cf"))
    if len(visible) > limit:
        visible = visible[: limit - 1] + "…"
    return html.escape(visible, quote=True)


@dataclass(frozen=True)
class ConsentView:
    """What the consent page shows and posts back."""

    action: str
    request_id: str
    csrf_token: str
    client_id: str
    client_name: str | None
    redirect_uri: str
    resource: str
    scopes: Sequence[str]
    message: str | None = None
    #: Who is already signed in (by a login step); ``None``: the form asks for a username.
    subject: str | None = None
    note: str = "Development authorization server: not for production."


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def consent_page(view: ConsentView) -> str:
    """The login-and-consent form for one pending authorization request."""
    name = display(view.client_name or view.client_id)
    scopes = "".join(f"<li><code>{display(scope, 200)}</code></li>" for scope in view.scopes)
    message = f'<p class="error">{display(view.message, 200)}</p>' if view.message else ""
    hidden = (
        f'<input type="hidden" name="request_id" value="{html.escape(view.request_id, quote=True)}">'
        f'<input type="hidden" name="csrf_token" value="{html.escape(view.csrf_token, quote=True)}">'
    )
    body = (
        f"<h1>Authorize {name}</h1>{message}"
        f"<p>Client <code>{display(view.client_id, 300)}</code> asks for access to "
        f"<code>{display(view.resource, 300)}</code> and will be sent back to "
        f"<code>{display(view.redirect_uri, 300)}</code>.</p>"
        f"<p>Scopes:</p><ul>{scopes or '<li>(none)</li>'}</ul>"
        f'<form method="post" action="{html.escape(view.action, quote=True)}">{hidden}'
        f"{_who(view.subject)}"
        '<button name="decision" value="approve">Approve</button>'
        '<button name="decision" value="deny" formnovalidate>Deny</button></form>'
        f"<p><small>{display(view.note, 200)}</small></p>"
    )
    return _document("Authorize access", body)


def _who(subject: str | None) -> str:
    if subject is not None:
        return f"<p>Signed in as <code>{display(subject, 200)}</code>.</p>"
    return '<p><label>Username <input name="username" autocomplete="username" required></label></p>'


def error_page(error: str, description: str) -> str:
    """An error shown to the user instead of redirecting to an unverified client."""
    body = (
        f"<h1>Authorization failed</h1><p><code>{display(error, 60)}</code></p>"
        f'<p class="error">{display(description, 300)}</p>'
        "<p>Return to the application and start again.</p>"
    )
    return _document("Authorization failed", body)
