"""Keys rotated without downtime: `sessions.previous_keys` and `signing.previous_keys` are
read and checked like the keys they follow, and need a current key beside them."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from mcp_bastion.app import build_gateway
from mcp_bastion.config import load_config
from mcp_bastion.errors import ConfigError

from .configs import edit, refusal, write


def _secrets(tmp_path: Path, **values: str) -> dict[str, dict[str, str]]:
    refs = {}
    for name, value in values.items():
        (tmp_path / name).write_text(value)
        refs[name] = {"file": str(tmp_path / name)}
    return refs


def test_previous_keys_need_a_current_key() -> None:
    for section in ("sessions", "signing"):
        refused = refusal(edit(**{f"{section}__previous_keys": [{"env": "OLD"}]}))
        assert f"{section}.previous_keys" in refused.message
        assert "need a current `key`" in refused.message


def test_a_rotated_config_loads_and_publishes_both_signing_keys(tmp_path: Path) -> None:
    old, new = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
    refs = _secrets(
        tmp_path,
        session=base64.b64encode(os.urandom(32)).decode(),
        session_old=base64.b64encode(os.urandom(32)).decode(),
        signing=json.dumps(new.as_dict(private=True)),
        signing_old=json.dumps(old.as_dict(private=False)),  # the public half is enough to publish
    )
    data = edit(
        sessions={"key": refs["session"], "previous_keys": [refs["session_old"]]},
        signing={"key": refs["signing"], "previous_keys": [refs["signing_old"]]},
    )
    loaded = load_config(write(tmp_path, data), environ={})
    gateway = build_gateway(loaded)
    jwks = json.loads(gateway._documents["/.well-known/jwks.json"])
    assert [k["kid"] for k in jwks["keys"]] == [new.thumbprint(), old.thumbprint()]


@pytest.mark.parametrize(
    ("name", "value", "where"),
    [
        ("session_old", base64.b64encode(os.urandom(16)).decode(), "sessions.previous_keys[0]"),
        (
            "signing_old",
            json.dumps({"kty": "oct", "k": base64.b64encode(os.urandom(32)).decode()}),
            "signing.previous_keys[0]",
        ),
    ],
)
def test_a_previous_key_that_cannot_serve_is_refused_at_load_naming_it(
    tmp_path: Path, name: str, value: str, where: str
) -> None:
    good = _secrets(
        tmp_path,
        session=base64.b64encode(os.urandom(32)).decode(),
        signing=json.dumps(ECKey.generate_key("P-256").as_dict(private=True)),
    )
    bad = _secrets(tmp_path, **{name: value})[name]
    section = "sessions" if name.startswith("session") else "signing"
    data = edit(
        sessions={"key": good["session"]},
        signing={"key": good["signing"]},
    )
    data[section]["previous_keys"] = [bad]
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, data), environ={})
    assert where in str(refused.value)
    assert value not in str(refused.value)  # a secret is described, never repeated
