"""Checks beyond the file's shape: the secrets' contents, the audit file's place, and the warnings
for legal-but-risky settings (issue 9: `check-config` said "valid" for configs `serve` then
failed on, or that quietly let anyone call a tool)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from mcp_bastion.config import config_warnings, load_config, parse_config
from mcp_bastion.config.checks import check_audit_destination, check_secrets
from mcp_bastion.errors import ConfigError

from .configs import edit, write

SESSION_KEY = base64.b64encode(os.urandom(32)).decode()
EC_KEY = ECKey.generate_key("P-256")
SECRET_MARK = "zz-SECRET-MARK-zz"  # must never appear in a message


def _jwk(key: Any, **extra: Any) -> str:
    return json.dumps({**key.as_dict(private=True), **extra})


def _refused(tmp_path: Path, data: dict[str, Any], environ: dict[str, str]) -> ConfigError:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ)
    assert caught.value.source == str(path)
    return caught.value


# --- sessions.key ---------------------------------------------------------------------------

SESSION_RULE = "the session key must be 32 random bytes, base64-encoded (openssl rand -base64 32)"


@pytest.mark.parametrize(
    ("value", "found"),
    [
        (base64.b64encode(b"k" * 16).decode(), "base64 of 16 bytes"),
        (base64.b64encode(b"k" * 33).decode(), "base64 of 33 bytes"),
        ("not base64 at all!", "text that is not base64"),
        ("k" * 32, "base64 of 24 bytes"),  # 32 characters are not 32 bytes
    ],
)
def test_a_session_key_that_cannot_seal_is_refused_at_load(tmp_path: Path, value: str, found: str) -> None:
    # Before: load_config and check-config accepted it; serve logged "listening", then failed.
    error = _refused(tmp_path, edit(sessions={"key": {"env": "SK"}}), {"SK": value})
    assert error.path == "sessions.key"
    assert error.message.endswith(f"sessions.key: {SESSION_RULE}; found {found}")


def test_a_good_session_key_loads(tmp_path: Path) -> None:
    path = write(tmp_path, edit(sessions={"key": {"env": "SK"}}))
    assert load_config(path, environ={"SK": SESSION_KEY}).secret("sessions.key") == SESSION_KEY


# --- signing.key ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "value", "found"),
    [
        ("ES256", "-----BEGIN PRIVATE KEY-----", "text that is not JSON (a PEM file? convert it to a JWK)"),
        ("ES256", "[1, 2]", "JSON that is not an object"),
        ("ES256", json.dumps({"keys": [EC_KEY.as_dict(private=True)]}), "a JWK set; give the one key itself"),
        (
            "ES256",
            json.dumps(OctKey.generate_key(256).as_dict(private=True)),
            "a symmetric key (kty 'oct'): its holder could verify and forge alike",
        ),
        ("ES256", json.dumps({"kty": "XYZ"}), "a JSON object with kty 'XYZ'"),
        ("ES256", json.dumps({"crv": "P-256"}), "a JSON object without kty"),
        (
            "ES256",
            json.dumps(EC_KEY.as_dict(private=False)),
            "a public key (kty 'EC', crv 'P-256', no private part 'd')",
        ),
        ("ES256", _jwk(EC_KEY, alg="ES384"), "a private key (kty 'EC', crv 'P-256') declaring alg 'ES384'"),
        (
            "ES256",
            _jwk(ECKey.generate_key("P-384")),
            "a private key (kty 'EC', crv 'P-384') that cannot sign ES256, or is malformed",
        ),
        (
            "RS256",
            _jwk(EC_KEY),
            "a private key (kty 'EC', crv 'P-256') that cannot sign RS256, or is malformed",
        ),
        (
            "EdDSA",
            _jwk(RSAKey.generate_key(2048)),
            "a private key (kty 'RSA') that cannot sign EdDSA, or is malformed",
        ),
    ],
)
def test_a_signing_key_that_cannot_sign_is_refused_at_load(
    tmp_path: Path, alg: str, value: str, found: str
) -> None:
    expected = {
        "ES256": "a private EC key on curve P-256",
        "RS256": "a private RSA key",
        "EdDSA": "a private OKP key on curve Ed25519 or Ed448",
    }[alg]
    error = _refused(tmp_path, edit(signing={"key": {"env": "JWK"}, "algorithm": alg}), {"JWK": value})
    assert error.path == "signing.key"
    assert error.message.endswith(
        f"signing.key: expected {expected} as a JWK (JSON) for signing.algorithm {alg}; found {found}"
    )


def test_a_refused_signing_key_is_never_quoted(tmp_path: Path) -> None:
    value = json.dumps({"kty": "oct", "k": SECRET_MARK})
    error = _refused(tmp_path, edit(signing={"key": {"env": "JWK"}}), {"JWK": value})
    assert SECRET_MARK not in error.message
    not_json = _refused(tmp_path, edit(signing={"key": {"env": "JWK"}}), {"JWK": SECRET_MARK})
    assert SECRET_MARK not in not_json.message


@pytest.mark.parametrize(
    ("alg", "key"),
    [
        ("ES256", EC_KEY),
        ("RS256", RSAKey.generate_key(2048)),
        ("PS256", RSAKey.generate_key(2048)),
        ("EdDSA", OKPKey.generate_key("Ed25519")),
    ],
)
def test_a_usable_signing_key_loads(tmp_path: Path, alg: str, key: Any) -> None:
    path = write(tmp_path, edit(signing={"key": {"env": "JWK"}, "algorithm": alg}))
    assert load_config(path, environ={"JWK": _jwk(key)}).secret("signing.key") == _jwk(key)


# --- a static upstream secret ---------------------------------------------------------------

STATIC = "servers[0].upstream_auth.secret"
HEADER_RULE = "expected one line of printable ASCII, spaces allowed between words (e.g. 'Bearer abc123')"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        # Before: accepted; then every call became a 502 (the upstream request head was refused).
        (f"Bearer {SECRET_MARK}\r\nX-Injected: 1", "holds a line break (CR or LF)"),
        (f"{SECRET_MARK}\nsecond-line", "holds a line break (CR or LF)"),
        (f"{SECRET_MARK}\x00", "holds a control character"),
        (f"{SECRET_MARK}\x7f", "holds a control character"),
        (f"Bearer {SECRET_MARK}\u00e9", "holds a character outside ASCII"),
        (f"Bearer {SECRET_MARK}\u2028", "holds a character outside ASCII"),
        (f" {SECRET_MARK}", "begins or ends with a space or tab"),
        (f"{SECRET_MARK}\t", "begins or ends with a space or tab"),
    ],
)
def test_a_static_secret_that_is_not_one_header_line_is_refused(
    tmp_path: Path, value: str, problem: str
) -> None:
    data = edit(servers__0__upstream_auth={"type": "static", "header": "X-Api-Key", "secret": {"env": "UP"}})
    error = _refused(tmp_path, data, {"UP": value})
    assert error.path == STATIC
    assert error.message.endswith(
        f"{STATIC}: the secret cannot be sent as the X-Api-Key header: it {problem}; {HEADER_RULE}"
    )
    assert SECRET_MARK not in error.message


def test_a_static_secret_from_a_file_may_end_with_a_newline(tmp_path: Path) -> None:
    secret = tmp_path / "up.key"
    secret.write_text("Bearer abc\tdef 123\n")
    data = edit(servers__0__upstream_auth={"type": "static", "secret": {"file": str(secret)}})
    assert load_config(write(tmp_path, data), environ={}).secret(STATIC) == "Bearer abc\tdef 123"


def test_check_secrets_is_the_library_entry_point() -> None:
    config = parse_config(edit(sessions={"key": {"env": "SK"}}))
    check_secrets(config, {"sessions.key": SESSION_KEY}, "f.yaml")
    with pytest.raises(ConfigError, match=r"^f\.yaml: sessions\.key: "):
        check_secrets(config, {"sessions.key": "short"}, "f.yaml")


def test_skip_secrets_checks_no_secret_content(tmp_path: Path) -> None:
    path = write(tmp_path, edit(sessions={"key": {"env": "SK"}}))
    assert load_config(path, environ={"SK": "short"}, read_secrets=False).secrets == {}


# --- audit.path -----------------------------------------------------------------------------


def test_an_audit_file_that_cannot_be_opened_is_refused_at_load(tmp_path: Path) -> None:
    # Before: serve listened, then its worker died opening the file (a traceback).
    missing = tmp_path / "no-such-folder" / "audit.jsonl"
    error = _refused(tmp_path, edit(audit={"sink": "file", "path": str(missing)}), {})
    assert error.path == "audit.path"
    assert error.message.endswith(
        f"audit.path: the audit file {str(missing)!r} cannot be created: the folder "
        f"{str(missing.parent)!r} does not exist"
    )
    folder = _refused(tmp_path, edit(audit={"sink": "file", "path": str(tmp_path)}), {})
    assert folder.message.endswith(f"the audit file {str(tmp_path)!r} is a folder, not a file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: the permission case cannot happen")
def test_an_audit_file_in_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        error = _refused(tmp_path, edit(audit={"sink": "file", "path": str(locked / "a.jsonl")}), {})
        assert "is not writable by this user" in error.message
    finally:
        locked.chmod(0o700)


def test_a_writable_audit_place_passes_and_nothing_is_created(tmp_path: Path) -> None:
    target = tmp_path / "audit.jsonl"
    check_audit_destination(parse_config(edit(audit={"sink": "file", "path": str(target)})))
    assert not target.exists()
    target.write_text("")
    check_audit_destination(parse_config(edit(audit={"sink": "file", "path": str(target)})))


# --- warnings -------------------------------------------------------------------------------

QUIET = edit(sessions={"key": {"env": "SK"}})


def _warnings(data: dict[str, Any], workers: int | None = None) -> list[str]:
    return [str(w) for w in config_warnings(parse_config(data), workers=workers)]


def test_a_careful_config_has_no_warnings() -> None:
    assert _warnings(QUIET) == []


@pytest.mark.parametrize(
    ("changes", "warning"),
    [
        (
            {"servers__0__tools": {"open_door": {"scopes": []}}},
            "servers[0].tools.open_door.scopes: empty: any caller with a valid token may call tool "
            "'open_door'; list the scopes it needs",
        ),
        (
            {"servers__0__destructive_scopes": []},
            "servers[0].destructive_scopes: empty: any caller with a valid token may call every tool not "
            "marked read-only; list the scopes they need",
        ),
        (
            {"public_base_url": "http://gw.example"},
            "public_base_url: plain http on a non-loopback host (gw.example): bearer tokens and session ids "
            "would cross the network unencrypted; expected https (TLS may end at a proxy in front)",
        ),
        (
            {"public_base_url": "http://10.1.2.3:8000"},
            "public_base_url: plain http on a non-loopback host (10.1.2.3): bearer tokens and session ids "
            "would cross the network unencrypted; expected https (TLS may end at a proxy in front)",
        ),
        (
            {"servers__0__auth": False},
            "servers[0].auth: false: https://gw.example/demo/mcp accepts calls without any token "
            "(for benchmarks and local experiments only)",
        ),
        (
            {"trusted_proxies": ["10.0.0.0/8", "0.0.0.0/0"]},
            "trusted_proxies[1]: 0.0.0.0/0 trusts every address: any client can set X-Forwarded-Host and "
            "choose the host the Host check sees; list only your load balancers",
        ),
        (
            {"origins": {"allow": ["https://app.example", "null"]}},
            "origins.allow[1]: 'null' admits opaque origins (sandboxed iframes, file:// pages): any such page "
            "may call the gateway from a browser",
        ),
        (
            {"origins": {"allow": ["https://app.example/"]}},
            "origins.allow[0]: 'https://app.example/' is not an origin (expected scheme://host[:port], no path "
            "or trailing slash): it never matches, so browsers on it get 403",
        ),
        (
            {"origins": {"allow": ["*"]}},
            "origins.allow[0]: '*' is not an origin (expected scheme://host[:port], no path or trailing slash): "
            "it never matches, so browsers on it get 403",
        ),
        (
            {"identity_providers__0__require_typ": None},
            "identity_providers[0].require_typ: null: any JWT this issuer signs for the resource passes as an "
            "access token, ID tokens included (RFC 9068 §4); keep it only for IdPs that do not type access tokens",
        ),
        (
            {
                "servers__0__upstream": "http://wiki.internal/mcp",
                "servers__0__upstream_auth": {"type": "static", "secret": {"env": "K"}},
            },
            "servers[0].upstream: plain http to wiki.internal: the static upstream secret crosses the network "
            "unencrypted; expected https",
        ),
        (
            {"scopes": {"implies": {"tools.read": ["tools.write"], "tools.write": ["admin"]}}},
            "scopes.implies: the read scope 'tools.read' implies 'tools.write': every token that may read may "
            "also do what 'tools.write' allows",
        ),
        ({"audit": {"sink": "none"}}, "audit.sink: none: no audit events are recorded, allowed or denied"),
        (
            {"telemetry": {"metrics": {"enabled": True, "host": "0.0.0.0"}}},
            "telemetry.metrics.host: 0.0.0.0 is not loopback: anyone who reaches it reads the metrics without "
            "any credential (servers, IdPs, refusal counts); keep it on a network only Prometheus reaches",
        ),
        (
            {"servers__0__auth": False, "policy": {"files": ["p.cedar"]}},
            "servers[0].auth: false, and Cedar policies are configured: they are not applied to this server "
            "(without a token there is no principal to decide about)",
        ),
    ],
)
def test_each_risky_setting_is_named(changes: dict[str, Any], warning: str) -> None:
    data = edit(sessions={"key": {"env": "SK"}}, **changes)
    assert warning in _warnings(data)


def test_an_empty_override_without_auth_says_anyone() -> None:
    data = edit(
        sessions={"key": {"env": "SK"}}, servers__0__auth=False, servers__0__tools={"t": {"scopes": []}}
    )
    assert (
        "servers[0].tools.t.scopes: empty: anyone who reaches the gateway may call tool 't'; list the scopes it needs"
        in _warnings(data)
    )


def test_secure_neighbours_of_the_risky_settings_are_quiet() -> None:
    data = edit(
        sessions={"key": {"env": "SK"}},
        public_base_url="http://127.0.0.1:8000",
        trusted_proxies=["10.0.0.0/8", "::1/128"],
        origins={"allow": ["https://app.example", "http://localhost:3000"]},
        servers__0__tools={"t": {"scopes": ["tools.read"]}},
        servers__0__upstream="http://127.0.0.1:9/mcp",
        servers__0__upstream_auth={"type": "static", "secret": {"env": "K"}},
        scopes={"implies": {"admin": ["tools.write"], "tools.write": ["tools.read"]}},
    )
    assert _warnings(data) == []


def test_session_and_signing_keys_with_several_workers() -> None:
    assert _warnings(edit()) == [
        "sessions.key: not set: session ids are sealed with a per-process key and do not survive a restart; "
        "set it to {env: …} or {file: …} holding `openssl rand -base64 32`"
    ]
    several = _warnings(edit(listen={"workers": 4}))
    assert several == [
        "sessions.key: not set: session ids are sealed with a per-process key and do not survive a restart; "
        "with 4 workers, a session opened on one is refused (404) by the others; set it to {env: …} or "
        "{file: …} holding `openssl rand -base64 32`",
        "signing.key: not set, with 4 workers: each signs minted upstream tokens with its own key and "
        "/.well-known/jwks.json shows only the answering worker's, so upstreams will refuse some tokens; "
        "set a private JWK all workers share",
    ]
    # `serve --workers N` overrides listen.workers, and the warning follows it.
    assert _warnings(edit(), workers=2)[1].startswith("signing.key: not set, with 2 workers")
    # No minted upstream token, no signing key needed.
    assert len(_warnings(edit(listen={"workers": 4}, servers__0__upstream_auth={"type": "none"}))) == 1
