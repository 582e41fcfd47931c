"""The process log: text for people, JSON lines for collectors, and never a credential.

- `--log-format text|json`, `--log-level debug|info|warning|error` (`serve`). A JSON line
  has `time` (RFC 3339, UTC), `level`, `logger`, `pid`, `message`, and `exception` when
  there is a traceback: one object per line, whatever the message holds (newlines and
  control characters are escaped by the encoder, so a logged value cannot forge a line).
- **Redaction at the handler (SL-01), at every level.** Whatever a record's message,
  arguments or traceback carry, these never reach the stream: anything shaped like a JWT
  (three base64url segments starting `eyJ`), the credential after `Bearer ` / `Basic `, and
  every secret value the config names (`{env: …}` / `{file: …}`), registered once loaded.
  The code does not log credentials in the first place; this catches what a library's
  debug output or an exception message might carry.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import Literal

import orjson

__all__ = ["LOG_LEVELS", "JsonFormatter", "LogFormat", "Redactor", "configure_logging", "redactor"]

LogFormat = Literal["text", "json"]
LOG_LEVELS = ("debug", "info", "warning", "error")
REDACTED = "[redacted]"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A compact JWS/JWT: header (always `{"` → `eyJ`), payload, signature (the last may be empty).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
# RFC 6750 §2.1 b64token, RFC 7617 token68: what follows an auth scheme name.
# At least 16 characters: real credentials are longer, and "Bearer realm" is not one.
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic|dpop)(\s+)[A-Za-z0-9\-._~+/]{16,}=*")
MIN_SECRET_LENGTH = 6  # a shorter "secret" would redact ordinary words from every line


class Redactor:
    """Scrubs credentials out of text (see the module docstring)."""

    def __init__(self) -> None:
        self._secrets: frozenset[str] = frozenset()

    def add_secrets(self, values: Iterable[str]) -> None:
        found = {v for v in values if len(v) >= MIN_SECRET_LENGTH}
        self._secrets = self._secrets | found

    def __call__(self, text: str) -> str:
        text = _JWT.sub(REDACTED, text)
        text = _CREDENTIAL.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


redactor = Redactor()  # one per process: the handler's, fed the config's secrets by `serve`


class _RedactingFormatter(logging.Formatter):
    def __init__(self, inner: logging.Formatter, scrub: Redactor) -> None:
        super().__init__()
        self._inner = inner
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        # The whole formatted record, traceback included, is what reaches the stream.
        return self._scrub(self._inner.format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process or os.getpid(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(
    *, level: str = "info", log_format: LogFormat = "text", quiet_clients: bool = True
) -> logging.Handler | None:
    """Send the root logger to stderr in `log_format` at `level`, through the redactor.

    Like `logging.basicConfig`, it leaves a root logger that already has handlers alone (a
    host program's, or a test runner's) and returns None then."""
    if quiet_clients:
        # Request lines of the HTTP clients are noise next to the audit feed.
        for name in ("httpx", "httpx2", "mcp"):
            logging.getLogger(name).setLevel(logging.WARNING)
    root = logging.getLogger()
    if root.handlers:
        return None
    inner = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter(inner, redactor))
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
