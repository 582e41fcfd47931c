"""The token store in the OS keyring: a real GNOME Keyring (Secret Service) on a private bus.

The backend choice is tested on ``keyring``'s own backends and ``keyrings.alt``'s plaintext
one; the store itself and ``connect --token-store auto`` run against gnome-keyring-daemon
(:mod:`tests.support.gnome_keyring`), as a desktop user's would.
"""

from __future__ import annotations

import json
import logging
import stat
import subprocess
import threading
from pathlib import Path

import httpx
import keyring.core
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, fail, null
from keyrings.alt.file import PlaintextKeyring

from mcp_bastion.connect._errors import ConnectError
from mcp_bastion.connect.dpop import DpopKey
from mcp_bastion.connect.keyring_store import KeyringTokenStore, keyring_backend, open_store
from mcp_bastion.connect.login import HEADLESS_PROMPT
from mcp_bastion.connect.tokens import ClientRegistration, StoredTokens, TokenStore

from ..support.gnome_keyring import running_gnome_keyring
from .hostile_server import TOKEN, running_hostile_server
from .stdio_connect import CONNECT

ISSUER = "https://idp.example.com"
RESOURCE = "https://gw.example.com/notes/mcp"
TIMEOUT_S = 30
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}


class ThirdPartyKeyring(KeyringBackend):
    """A backend the user installed and configured on purpose (not an OS keyring)."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise AssertionError("never written in these tests")

    def delete_password(self, service: str, username: str) -> None:
        raise AssertionError("never deleted in these tests")


def _configure(monkeypatch: pytest.MonkeyPatch, backend: KeyringBackend) -> None:
    monkeypatch.setattr(keyring.core, "_keyring_backend", backend)  # as keyringrc.cfg would


@pytest.mark.parametrize(
    "backend",
    [PlaintextKeyring(), fail.Keyring(), null.Keyring()],
    ids=["plaintext", "fail", "null"],
)
def test_unsafe_backends_are_refused_and_auto_falls_back_to_the_file(
    backend: KeyringBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # keyrings.alt's file keyrings are plaintext, or ask a password on the terminal (our stdin
    # is the MCP channel): the whole package is refused. fail and null store nothing.
    _configure(monkeypatch, backend)
    with caplog.at_level(logging.INFO, logger="mcp_bastion.connect"):
        store = open_store("auto", tmp_path / "t.json")
    assert isinstance(store, TokenStore)
    assert f"tokens are kept in the 0600 file {tmp_path / 't.json'}" in caplog.text
    assert "is not a safe secret store" in caplog.text
    with pytest.raises(ConnectError, match=r"--token-store keyring: the keyring backend .* is not a safe"):
        open_store("keyring", tmp_path / "t.json")


def test_auto_takes_only_an_os_keyring_and_keyring_takes_a_configured_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _configure(monkeypatch, ThirdPartyKeyring())
    assert keyring_backend(os_only=True)[0] is None
    assert isinstance(open_store("auto", tmp_path / "t.json"), TokenStore)
    assert isinstance(open_store("keyring", tmp_path / "t.json"), KeyringTokenStore)
    _configure(monkeypatch, SecretService.Keyring())
    backend, name = keyring_backend(os_only=True)
    assert isinstance(backend, SecretService.Keyring)
    assert name == "keyring.backends.SecretService.Keyring"
    assert isinstance(open_store("file", tmp_path / "t.json"), TokenStore)  # file is file


def test_entries_live_in_gnome_keyring_and_nowhere_on_disk_in_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_gnome_keyring(tmp_path) as env:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", env["DBUS_SESSION_BUS_ADDRESS"])
        backend = SecretService.Keyring()
        store = KeyringTokenStore(backend)
        key = DpopKey.generate()
        tokens = StoredTokens("secret-access-token", "secret-refresh-token", 10.0, "read", "DPoP")
        store.save(ISSUER, RESOURCE, tokens=tokens, client=ClientRegistration("c"), dpop_key=key)

        again = KeyringTokenStore(SecretService.Keyring())  # a later run
        assert again.tokens(ISSUER, RESOURCE) == tokens
        assert again.client(ISSUER, RESOURCE) == ClientRegistration("c")
        restored = again.dpop_key(ISSUER, RESOURCE)
        assert restored is not None
        assert restored.thumbprint() == key.thumbprint()
        # RFC 8707 audience: another resource or issuer has its own entry.
        assert again.tokens(ISSUER, "https://gw.example.com/other/mcp") is None
        assert again.tokens("https://evil.example.com", RESOURCE) is None
        again.forget_tokens(ISSUER, RESOURCE)
        assert again.tokens(ISSUER, RESOURCE) is None
        assert again.client(ISSUER, RESOURCE) == ClientRegistration("c")

        # A damaged secret is treated as empty, as a damaged file is.
        backend.set_password("mcp-bastion connect", TokenStore._key(ISSUER, "x"), "{not json")
        assert store.tokens(ISSUER, "x") is None
    on_disk = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"secret-refresh-token" not in on_disk
    assert key.private_jwk()["d"].encode() not in on_disk


def _connect(url: str, args: list[str], env: dict[str, str]) -> tuple[list[object], str]:
    """One ``connect`` process: initialize, follow the headless login if asked; its answers and stderr."""
    process = subprocess.Popen(
        [CONNECT, "connect", "--headless", *args, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdin is not None
    assert process.stderr is not None
    err: list[str] = []

    def browse() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            text = line.decode()
            err.append(text)
            if text.startswith(HEADLESS_PROMPT):
                httpx.get(text[len(HEADLESS_PROMPT) :].strip(), follow_redirects=True, trust_env=False)

    reader = threading.Thread(target=browse, daemon=True)
    reader.start()
    process.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
    process.stdin.close()
    process.wait(timeout=TIMEOUT_S)  # connect exits once stdin ends and the answer is out
    assert process.stdout is not None
    out = process.stdout.read()
    process.stdout.close()
    reader.join(TIMEOUT_S)
    process.stderr.close()
    return [json.loads(line) for line in out.decode().splitlines()], "".join(err)


def test_connect_auto_keeps_tokens_in_gnome_keyring_across_runs(tmp_path: Path) -> None:
    with running_gnome_keyring(tmp_path) as env, running_hostile_server() as server:
        answers, err = _connect(server.url, ["--token-store", "auto"], env)
        assert answers == [{"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}]
        assert "tokens are kept in the OS keyring (keyring.backends.SecretService.Keyring)" in err
        assert HEADLESS_PROMPT in err
        # The second run finds the token in the keyring: no login.
        answers, err = _connect(server.url, ["--token-store", "auto"], env)
        assert answers == [{"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}]
        assert HEADLESS_PROMPT not in err
        assert len(server.token_requests) == 1
    assert TOKEN not in err
    assert not (tmp_path / "config" / "mcp-bastion" / "connect-tokens.json").exists()  # no file


def test_connect_auto_without_an_os_keyring_says_so_and_uses_the_0600_file(tmp_path: Path) -> None:
    # No session bus, and keyrings.alt's plaintext keyring configured: refused, with a line.
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
    }
    token_file = tmp_path / "config" / "mcp-bastion" / "connect-tokens.json"
    with running_hostile_server() as server:
        answers, err = _connect(server.url, [], env)
        refused = subprocess.run(
            [CONNECT, "connect", "--token-store", "keyring", server.url],
            input=b"",
            capture_output=True,
            env=env,
            timeout=TIMEOUT_S,
        )
    assert answers == [{"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}]
    assert f"tokens are kept in the 0600 file {token_file}" in err
    assert "keyrings.alt.file.PlaintextKeyring is not a safe secret store" in err
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert not (tmp_path / "data" / "python_keyring").exists()  # nothing went to the plaintext keyring
    assert refused.returncode != 0
    assert b"--token-store keyring: the keyring backend" in refused.stderr
