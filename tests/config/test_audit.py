"""`audit.spool`, `audit.rotate`, `audit.webhook`: what the config accepts and refuses, and the
webhook secret read at load like every other secret, never repeated in an error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcp_bastion.audit import SpooledSink, sink_for
from mcp_bastion.audit.otlp import OtlpLogsDestination
from mcp_bastion.audit.webhook import WebhookDestination
from mcp_bastion.config import load_config, parse_config
from mcp_bastion.errors import ConfigError

BASE: dict[str, Any] = {
    "public_base_url": "https://gw.example",
    "servers": [{"name": "demo", "upstream": "https://upstream.example/mcp", "auth": False}],
}


def _config(tmp_path: Path, audit: dict[str, Any]) -> Path:
    path = tmp_path / "bastion.yaml"
    path.write_text(yaml.safe_dump({**BASE, "audit": audit}))
    return path


def test_a_webhook_needs_a_spool_and_its_settings() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, "audit": {"sink": "webhook", "webhook": {"url": "https://siem.example/in"}}})
    assert "audit.webhook" in str(caught.value)
    assert "spool" in caught.value.message


def test_rotation_applies_to_a_spooled_file_only() -> None:
    with pytest.raises(ConfigError):
        parse_config({**BASE, "audit": {"sink": "stdout", "rotate": {"max_bytes": 4096}}})


def test_a_webhook_url_with_credentials_is_refused() -> None:
    audit = {"sink": "webhook", "spool": {"dir": "spool"}, "webhook": {"url": "https://u:p@siem.example/in"}}
    with pytest.raises(ConfigError):
        parse_config({**BASE, "audit": audit})


def test_the_webhook_secret_is_read_at_load_checked_and_never_repeated(tmp_path: Path) -> None:
    audit = {
        "sink": "webhook",
        "spool": {"dir": str(tmp_path / "spool")},
        "webhook": {"url": "https://siem.example/in", "header": "X-Hec", "secret": {"env": "SIEM_TOKEN"}},
    }
    loaded = load_config(_config(tmp_path, audit), environ={"SIEM_TOKEN": "Splunk abc123"})
    assert loaded.secret("audit.webhook.secret") == "Splunk abc123"
    sink = sink_for(loaded.config.audit, loaded.secrets)
    assert isinstance(sink, SpooledSink)
    assert isinstance(sink.destination, WebhookDestination)
    sink.spool.close()
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, audit), environ={"SIEM_TOKEN": "Splunk abc\r\nX-Evil: 1"})
    assert caught.value.path == "audit.webhook.secret"
    assert "X-Evil" not in caught.value.message
    with pytest.raises(ConfigError) as unset:
        load_config(_config(tmp_path, audit), environ={})
    assert unset.value.path == "audit.webhook.secret"


def test_a_spool_folder_that_cannot_be_created_is_refused_at_load(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    audit = {"sink": "stdout", "spool": {"dir": str(blocker / "spool")}}
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, audit))
    assert caught.value.path == "audit.spool.dir"
    assert "is not a folder" in caught.value.message
    fine = {"sink": "stdout", "spool": {"dir": str(tmp_path / "new" / "spool")}}
    assert load_config(_config(tmp_path, fine)).config.audit.spool is not None


def test_an_otlp_sink_needs_a_spool_and_an_endpoint_without_credentials() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, "audit": {"sink": "otlp", "otlp": {"endpoint": "http://otel.example/v1/logs"}}})
    assert caught.value.path == "audit.otlp"
    assert "spool" in caught.value.message
    audit = {
        "sink": "otlp",
        "spool": {"dir": "spool"},
        "otlp": {"endpoint": "https://u:p@otel.example/v1/logs"},
    }
    with pytest.raises(ConfigError) as credentials:
        parse_config({**BASE, "audit": audit})
    assert "credentials" in credentials.value.message
    assert "u:p" not in credentials.value.message


def test_the_otlp_secret_is_read_at_load_checked_and_never_repeated(tmp_path: Path) -> None:
    audit = {
        "sink": "otlp",
        "spool": {"dir": str(tmp_path / "spool")},
        "otlp": {"endpoint": "https://otel.example/v1/logs", "secret": {"env": "OTEL_TOKEN"}},
        # A webhook block left in the file is not what the otlp sink sends.
        "webhook": {"url": "https://siem.example/in", "secret": {"env": "SIEM_TOKEN"}},
    }
    environ = {"OTEL_TOKEN": "Bearer o-123", "SIEM_TOKEN": "Splunk s-456"}
    loaded = load_config(_config(tmp_path, audit), environ=environ)
    assert loaded.secret("audit.otlp.secret") == "Bearer o-123"
    sink = sink_for(loaded.config.audit, loaded.secrets)
    assert isinstance(sink, SpooledSink)
    assert isinstance(sink.destination, OtlpLogsDestination)
    assert sink.destination._collector._http.headers["authorization"] == "Bearer o-123"
    sink.spool.close()
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, audit), environ={**environ, "OTEL_TOKEN": "Bearer o\r\nX-Evil: 1"})
    assert caught.value.path == "audit.otlp.secret"
    assert "X-Evil" not in caught.value.message


def test_an_otlp_sink_without_opentelemetry_proto_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As without the [otel] extra: the import fails, the operator is told what to install.
    monkeypatch.setitem(sys.modules, "mcp_bastion.audit.otlp", None)
    audit = {
        "sink": "otlp",
        "spool": {"dir": str(tmp_path / "spool")},
        "otlp": {"endpoint": "http://c/v1/logs"},
    }
    with pytest.raises(ConfigError) as caught:
        sink_for(parse_config({**BASE, "audit": audit}).audit)
    assert caught.value.path == "audit.sink"
    assert "[otel]" in caught.value.hint
