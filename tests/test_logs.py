"""The process log (`mcp_bastion.logs`): the JSON line format and the redaction every line goes
through (SL-01), tested on a real handler writing to a stream."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from mcp_bastion.logs import JsonFormatter, Redactor, _RedactingFormatter

from .auth.tokens import claims, header, token

TOKEN = token(header("ES256"), claims())


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, Redactor]]:
    stream = io.StringIO()
    scrub = Redactor()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_RedactingFormatter(JsonFormatter(), scrub))
    logger = logging.getLogger("mcp_bastion.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream, scrub
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_carries_time_level_logger_pid_and_message(
    captured: tuple[logging.Logger, io.StringIO, Redactor],
) -> None:
    logger, stream, _ = captured
    logger.info("listening on %s:%d", "127.0.0.1", 8000)
    (line,) = _lines(stream)
    assert line["level"] == "info"
    assert line["logger"] == "mcp_bastion.test_logs"
    assert line["message"] == "listening on 127.0.0.1:8000"
    assert isinstance(line["pid"], int)
    assert isinstance(line["time"], str)
    assert line["time"].endswith("Z")


def test_a_logged_value_cannot_forge_a_json_line(
    captured: tuple[logging.Logger, io.StringIO, Redactor],
) -> None:
    # SL-03 for the process log: a newline in a value stays inside its own JSON string.
    logger, stream, _ = captured
    logger.warning("bad tool %s", 'x"}\n{"level":"info","message":"forged"}')
    lines = _lines(stream)
    assert len(lines) == 1
    assert lines[0]["level"] == "warning"


@pytest.mark.parametrize(
    "template",
    [
        "token {}",
        "Authorization: Bearer {}",
        "failed on header value 'Bearer {}' (bad)",
        "{}",
    ],
)
def test_a_token_anywhere_in_a_record_is_redacted(
    template: str, captured: tuple[logging.Logger, io.StringIO, Redactor]
) -> None:
    logger, stream, _ = captured
    logger.debug(template.format(TOKEN))
    assert TOKEN not in stream.getvalue()
    assert TOKEN.split(".")[2] not in stream.getvalue()  # not even the signature
    assert "[redacted]" in _lines(stream)[0]["message"]


def test_a_bearer_credential_that_is_not_a_jwt_is_redacted(
    captured: tuple[logging.Logger, io.StringIO, Redactor],
) -> None:
    logger, stream, _ = captured
    opaque = "2YotnFZFEjr1zCsicMWpAA-opaque.token~value"
    logger.info("upstream said: Authorization: bearer %s", opaque)
    assert opaque not in stream.getvalue()


def test_a_traceback_is_redacted_too(captured: tuple[logging.Logger, io.StringIO, Redactor]) -> None:
    logger, stream, _ = captured
    try:
        raise ValueError(f"cannot parse {TOKEN}")
    except ValueError:
        logger.exception("unexpected failure")
    line = _lines(stream)[0]
    assert "ValueError" in str(line["exception"])
    assert TOKEN not in stream.getvalue()


def test_configured_secret_values_are_redacted_and_short_ones_are_not_words_removed(
    captured: tuple[logging.Logger, io.StringIO, Redactor],
) -> None:
    logger, stream, scrub = captured
    scrub.add_secrets(["s3cr3t-upstream-key-value", "abc"])
    logger.error("upstream refused s3cr3t-upstream-key-value at abc")
    message = _lines(stream)[0]["message"]
    assert message == "upstream refused [redacted] at abc"


def test_ordinary_words_after_bearer_survive() -> None:
    scrub = Redactor()
    assert scrub('WWW-Authenticate: Bearer realm="x"') == 'WWW-Authenticate: Bearer realm="x"'
