"""Loading the config: one validated object, errors that name the file and the key path."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pydantic
import pytest
from joserfc.jwk import ECKey

from mcp_bastion.config import load_config, parse_config, read_secret
from mcp_bastion.config.load import MAX_CONFIG_BYTES
from mcp_bastion.config.model import SUPPORTED_ALGORITHMS, SecretRef
from mcp_bastion.errors import ConfigError

from .configs import MINIMAL
from .configs import edit as _with
from .configs import refusal as _error
from .configs import write as _write


def test_minimal_config_and_its_secure_defaults(tmp_path: Path) -> None:
    loaded = load_config(_write(tmp_path, MINIMAL), environ={})
    config = loaded.config
    assert loaded.path == str(tmp_path / "bastion.yaml")
    assert loaded.secrets == {}
    assert config.public_base_url == "https://gw.example"
    assert (config.listen.host, config.listen.port) == ("127.0.0.1", 8000)
    idp = config.identity_providers[0]
    assert idp.algorithms == SUPPORTED_ALGORITHMS
    assert "none" not in idp.algorithms
    assert not any(alg.startswith("HS") for alg in idp.algorithms)
    assert (idp.leeway_seconds, idp.require_typ, idp.allow_insecure_http) == (30, "at+jwt", False)
    server = config.servers[0]
    assert (server.auth, server.upstream_auth.type, server.trust_annotations) == (True, "minted", True)
    assert (config.scopes.read, config.scopes.write, config.scopes.admin) == (
        "tools.read",
        "tools.write",
        "admin",
    )


def test_config_is_immutable() -> None:
    config = parse_config(MINIMAL)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.public_base_url = "https://evil.example"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://gw.example/", "https://gw.example"),
        ("HTTPS://GW.Example", "https://gw.example"),
        ("https://gw.example/base/", "https://gw.example/base"),
        ("https://gw.example:8443/Base", "https://gw.example:8443/Base"),
    ],
)
def test_public_base_url_is_canonical(url: str, canonical: str) -> None:
    assert parse_config(_with(public_base_url=url)).public_base_url == canonical


def test_several_errors_are_all_reported() -> None:
    error = _error(_with(colour="blue", servers__0__upstream="ftp://x"))
    assert "(and 1 more: " in error.message


@pytest.mark.parametrize(
    ("issuer", "allow", "fragment"),
    [
        ("https://idp.example", False, None),
        ("https://idp.example/tenant/", False, None),
        ("http://127.0.0.1:9000", True, None),
        ("http://localhost:9000", True, None),
        ("http://[::1]:9000", True, None),
        ("http://127.0.0.1:9000", False, "is plain http: expected https, or allow_insecure_http: true"),
        ("http://localhost", False, "is plain http: expected https, or allow_insecure_http: true"),
        ("http://idp.example", False, "expected an https URL, found 'http://idp.example'"),
        ("http://idp.example", True, "admits plain http on loopback only"),
        ("http://10.0.0.1", True, "admits plain http on loopback only"),
        ("http://127.0.0.1.nip.io", True, "admits plain http on loopback only"),
        ("http://localhost.evil.example", True, "admits plain http on loopback only"),
        ("ftp://idp.example", True, "expected an https URL, found 'ftp://idp.example'"),
        ("idp.example", False, "expected an https URL, found 'idp.example'"),
        ("https://", False, "expected an https URL, found 'https://'"),
    ],
)
def test_http_issuer_only_on_loopback_when_allowed(issuer: str, allow: bool, fragment: str | None) -> None:
    data = _with(identity_providers=[{"name": "corp", "issuer": issuer, "allow_insecure_http": allow}])
    if fragment is None:
        assert parse_config(data).identity_providers[0].issuer == issuer
    else:
        error = _error(data)
        assert error.path == "identity_providers[0].issuer"
        assert fragment in error.message


@pytest.mark.parametrize(
    ("jwks_uri", "allow", "ok"),
    [
        ("https://idp.example/keys", False, True),
        ("http://127.0.0.1:9000/keys", True, True),
        ("http://127.0.0.1:9000/keys", False, False),
        ("http://169.254.169.254/keys", True, False),
    ],
)
def test_jwks_uri_follows_the_same_rule(jwks_uri: str, allow: bool, ok: bool) -> None:
    issuer = "http://127.0.0.1:9000" if allow else "https://idp.example"
    idp = {"name": "corp", "issuer": issuer, "jwks_uri": jwks_uri, "allow_insecure_http": allow}
    data = _with(identity_providers=[idp])
    if ok:
        assert parse_config(data).identity_providers[0].jwks_uri == jwks_uri
    else:
        assert _error(data).path == "identity_providers[0].jwks_uri"


@pytest.mark.parametrize("leeway", [0, 300])
def test_leeway_within_the_cap(leeway: int) -> None:
    assert (
        parse_config(_with(identity_providers__0__leeway_seconds=leeway)).identity_providers[0].leeway_seconds
        == leeway
    )


@pytest.mark.parametrize("data", [[], "text", None, 5, [MINIMAL]])
def test_top_level_must_be_a_mapping(data: Any) -> None:
    error = _error(data)
    assert error.message == "bastion.yaml: the top level must be a mapping of keys"


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    text = (
        "public_base_url: https://gw.example\nservers:\n  - name: demo\n    upstream: [unclosed\nlisten: {}\n"
    )
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    error = caught.value
    assert error.source == str(path)
    assert error.path.startswith("line 5, column ")
    assert error.message.startswith(f"{path}: line 5, column ")


def test_yaml_tab_indentation_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "servers:\n\t- name: demo\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.path == "line 2, column 1"
    assert "found character '\\t' that cannot start any token" in caught.value.message


def test_yaml_python_tags_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "public_base_url: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.path == "line 1, column 18"


@pytest.mark.parametrize(
    ("text", "path", "lines"),
    [
        ("listen:\n  port: 8000\n  host: 0.0.0.0\n  port: 9000\n", "listen.port", (2, 4)),
        (
            "servers:\n  - name: a\n    upstream: http://u.example/mcp\n    name: b\n",
            "servers[0].name",
            (2, 4),
        ),
        (
            "public_base_url: https://a.example\n'public_base_url': https://b.example\n",
            "public_base_url",
            (1, 2),
        ),
        # One key as YAML reads it: 1 and 0x1 are both the integer 1.
        ("servers:\n  - tools:\n      1: {}\n      0x1: {}\n", "servers[0].tools['1']", (3, 4)),
        ("a: &m {k: 1, k: 2}\nb: *m\n", "a.k", (1, 1)),
    ],
)
def test_a_key_written_twice_is_refused_naming_both_lines(
    tmp_path: Path, text: str, path: str, lines: tuple[int, int]
) -> None:
    # Issue 9: PyYAML keeps the last value silently; `auth: true` then `auth: false` lower in the
    # same server would turn authentication off without a word.
    config = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(config, read_secrets=False)
    assert caught.value.path == path
    assert caught.value.message == (
        f"{config}: {path}: this key appears twice in one mapping, on lines {lines[0]} and {lines[1]} "
        "(YAML would silently keep only the last value): keep one"
    )


def test_merge_keys_may_override_what_they_merge(tmp_path: Path) -> None:
    # `<<: *base` then an explicit key is YAML's way to override, not a duplicate.
    text = (
        "public_base_url: https://gw.example\n"
        "identity_providers: [{name: corp, issuer: 'https://idp.example'}]\n"
        "servers:\n"
        "  - &base {name: demo, upstream: 'http://127.0.0.1:1/mcp', timeout_seconds: 5}\n"
        "  - <<: *base\n"
        "    name: other\n"
        "    timeout_seconds: 9\n"
    )
    servers = load_config(_write(tmp_path, text), read_secrets=False).config.servers
    assert [(s.name, s.timeout_seconds) for s in servers] == [("demo", 5), ("other", 9)]


def test_duplicate_check_visits_shared_nodes_once(tmp_path: Path) -> None:
    # 40 levels, each naming the one before twice: 2**40 paths, 40 nodes. A walk that followed
    # every alias would never end (the billion-laughs shape, aimed at the duplicate check).
    lines = ["l0: &l0 [x]"] + [f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, 40)]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, read_secrets=False)
    assert "l0: unknown key" in caught.value.message  # refused as an unknown key, promptly


def test_invalid_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_bytes(b"public_base_url: \xff\xfe\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.message == f"{path}: not valid YAML"


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.message == f"{path}: cannot read the file (No such file or directory)"


def test_oversized_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than 1048576 bytes"):
        load_config(path, environ={})


def test_file_errors_carry_the_file_name(tmp_path: Path) -> None:
    path = _write(tmp_path, _with(servers__0__upstream="ftp://x"), name="prod.yaml")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.message.startswith(f"{path}: servers[0].upstream: ")


# --- secrets ------------------------------------------------------------------------------

SESSION_KEY = base64.b64encode(bytes(range(32))).decode()
SIGNING_JWK = json.dumps(ECKey.generate_key("P-256").as_dict(private=True))


def _static(secret: dict[str, str]) -> dict[str, Any]:
    return _with(servers__0__upstream_auth={"type": "static", "header": "X-Api-Key", "secret": secret})


def test_secret_from_environment(tmp_path: Path) -> None:
    loaded = load_config(
        _write(tmp_path, _static({"env": "UPSTREAM_KEY"})), environ={"UPSTREAM_KEY": "s3cret"}
    )
    assert loaded.secrets == {"servers[0].upstream_auth.secret": "s3cret"}
    assert loaded.secret("servers[0].upstream_auth.secret") == "s3cret"
    assert loaded.secret("sessions.key") is None


@pytest.mark.parametrize("environ", [{}, {"UPSTREAM_KEY": ""}, {"upstream_key": "x"}])
def test_missing_env_var_names_the_key_path(tmp_path: Path, environ: dict[str, str]) -> None:
    path = _write(tmp_path, _static({"env": "UPSTREAM_KEY"}))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ)
    error = caught.value
    assert (error.source, error.path) == (str(path), "servers[0].upstream_auth.secret")
    assert error.message == (
        f"{path}: servers[0].upstream_auth.secret: environment variable UPSTREAM_KEY is not set or empty"
    )
    # check-config's way round a machine without the secrets is named where the user needs it.
    assert "check-config --skip-secrets" in error.hint


def test_unreadable_secret_file_hint_names_skip_secrets(tmp_path: Path) -> None:
    path = _write(tmp_path, _static({"file": str(tmp_path / "absent")}))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.message == (
        f"{path}: servers[0].upstream_auth.secret: cannot read secret file "
        f"{str(tmp_path / 'absent')!r} (No such file or directory)"
    )
    assert "check-config --skip-secrets" in caught.value.hint


def test_secret_value_never_appears_in_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, _with(sessions={"key": {"env": "SESSION_KEY"}}, colour="x"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"SESSION_KEY": "do-not-print-me"})
    assert "do-not-print-me" not in caught.value.message


def test_read_secrets_false_skips_resolution(tmp_path: Path) -> None:
    loaded = load_config(_write(tmp_path, _static({"env": "UNSET"})), environ={}, read_secrets=False)
    assert loaded.secrets == {}


@pytest.mark.parametrize(
    ("content", "value"), [("abc\n", "abc"), ("abc\r\n", "abc"), ("abc", "abc"), ("a b \n\n", "a b ")]
)
def test_secret_from_file_drops_the_trailing_newline(tmp_path: Path, content: str, value: str) -> None:
    secret_file = tmp_path / "key.txt"
    secret_file.write_text(content, newline="")
    assert read_secret(SecretRef(file=str(secret_file)), {}, "sessions.key") == value


def test_secrets_from_files_and_environment_together(tmp_path: Path) -> None:
    session_file = tmp_path / "session.key"
    session_file.write_text(SESSION_KEY + "\n")
    data = _with(sessions={"key": {"file": str(session_file)}}, signing={"key": {"env": "SIGNING_JWK"}})
    loaded = load_config(_write(tmp_path, data), environ={"SIGNING_JWK": SIGNING_JWK})
    assert loaded.secrets == {"sessions.key": SESSION_KEY, "signing.key": SIGNING_JWK}


@pytest.mark.parametrize("content", ["", "\n", "\r\n\n"])
def test_an_empty_secret_file_is_refused(tmp_path: Path, content: str) -> None:
    # An empty environment variable was already refused; an empty file read as "" and went on.
    secret_file = tmp_path / "empty.key"
    secret_file.write_text(content, newline="")
    with pytest.raises(ConfigError) as caught:
        read_secret(SecretRef(file=str(secret_file)), {}, "sessions.key", "f.yaml")
    assert caught.value.message == f"f.yaml: sessions.key: secret file {str(secret_file)!r} is empty"


def test_missing_secret_file_names_the_key_path(tmp_path: Path) -> None:
    missing = tmp_path / "absent.key"
    path = _write(tmp_path, _with(signing={"key": {"file": str(missing)}}))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.path == "signing.key"
    assert f"cannot read secret file {str(missing)!r}" in caught.value.message


def test_read_secret_directly() -> None:
    assert read_secret(SecretRef(env="A"), {"A": "1"}, "x.y") == "1"
    with pytest.raises(ConfigError) as caught:
        read_secret(SecretRef(env="A"), {}, "x.y", "f.yaml")
    assert caught.value.message == "f.yaml: x.y: environment variable A is not set or empty"


def test_environment_is_read_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_KEY", "from-os-environ")
    path = _write(tmp_path, _static({"env": "UPSTREAM_KEY"}))
    assert load_config(path).secret("servers[0].upstream_auth.secret") == "from-os-environ"
    with pytest.raises(ConfigError):
        load_config(path, environ={})
