"""Loading the config: one validated object, errors that name the file and the key path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from mcp_bastion.config import load_config, parse_config, read_secret
from mcp_bastion.config.load import MAX_CONFIG_BYTES
from mcp_bastion.config.model import SUPPORTED_ALGORITHMS, SecretRef
from mcp_bastion.errors import ConfigError

MINIMAL: dict[str, Any] = {
    "public_base_url": "https://gw.example",
    "identity_providers": [{"name": "corp", "issuer": "https://idp.example"}],
    "servers": [{"name": "demo", "upstream": "http://127.0.0.1:9001/mcp"}],
}


def _write(tmp_path: Path, data: Any, name: str = "bastion.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def _with(**changes: Any) -> dict[str, Any]:
    """MINIMAL with changes at `__`-separated paths (`servers__0__upstream="x"`); `...` deletes a key."""
    data = copy.deepcopy(MINIMAL)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


def _error(data: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="bastion.yaml")
    return caught.value


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


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        (
            _with(servers__0__upstream="ftp://files.example"),
            "servers[0].upstream",
            "must be an http(s) URL with a host",
        ),
        (
            _with(servers__0__upstream="https://user:pw@up.example"),
            "servers[0].upstream",
            "must not carry credentials",
        ),
        (_with(servers__0__upstream=...), "servers[0].upstream", "required key is missing"),
        (_with(servers__0__colour="blue"), "servers[0].colour", "unknown key"),
        (_with(colour="blue"), "colour", "unknown key (check its spelling and indentation)"),
        (_with(identity_providers__0__leeway_secs=5), "identity_providers[0].leeway_secs", "unknown key"),
        (_with(listen={"hots": "0.0.0.0"}), "listen.hots", "unknown key"),
        (_with(servers=...), "servers", "required key is missing"),
        (_with(servers=[]), "servers", "at least 1 item"),
        (_with(public_base_url="gw.example"), "public_base_url", "must be an absolute http(s) URL"),
        (_with(public_base_url="https://gw.example/?x=1"), "public_base_url", "must not have a query"),
        (_with(servers__0__name="Demo"), "servers[0].name", "a lower-case name"),
        (
            _with(servers__0__tools={"t": {"scopes": ["has space"]}}),
            "servers[0].tools.t.scopes[0]",
            "an OAuth scope token",
        ),
        (
            _with(identity_providers__0__leeway_seconds=301),
            "identity_providers[0].leeway_seconds",
            "less than or equal to 300",
        ),
        (
            _with(identity_providers__0__leeway_seconds=-1),
            "identity_providers[0].leeway_seconds",
            "greater than or equal to 0",
        ),
        (
            _with(identity_providers__0__algorithms=["HS256"]),
            "identity_providers[0].algorithms[0]",
            "'RS256', 'PS256', 'ES256' or 'EdDSA'",
        ),
        (
            _with(identity_providers__0__algorithms=["none"]),
            "identity_providers[0].algorithms[0]",
            "'RS256', 'PS256', 'ES256' or 'EdDSA'",
        ),
        (_with(identity_providers__0__algorithms=[]), "identity_providers[0].algorithms", "at least 1 item"),
        (
            _with(identity_providers__0__discovery=False),
            "identity_providers[0]",
            "with discovery off, 'jwks_uri' is required",
        ),
        (_with(trusted_proxies=["10.0.0.0/33"]), "trusted_proxies", "is not an IP network"),
        (
            _with(servers__0__upstream_auth={"type": "static"}),
            "servers[0].upstream_auth",
            "type 'static' needs 'secret'",
        ),
        (
            _with(servers__0__upstream_auth={"secret": {"env": "X"}}),
            "servers[0].upstream_auth",
            "only used with type 'static'",
        ),
        (
            _with(servers__0__upstream_auth={"type": "static", "secret": {}}),
            "servers[0].upstream_auth.secret",
            "exactly one of 'env' or 'file'",
        ),
        (
            _with(servers__0__identity_providers=["other"]),
            "(top level)",
            "names unknown identity providers ['other']",
        ),
        (_with(identity_providers=[]), "(top level)", "requires auth but no identity_providers"),
        (
            _with(servers=[MINIMAL["servers"][0], MINIMAL["servers"][0]]),
            "(top level)",
            "server names must be unique",
        ),
        (_with(audit={"sink": "file"}), "audit", "sink 'file' needs 'path'"),
        (_with(limits={"max_token_bytes": 10**9}), "limits.max_token_bytes", "less than or equal to 65536"),
    ],
)
def test_errors_name_the_file_and_key_path(data: dict[str, Any], path: str, fragment: str) -> None:
    error = _error(data)
    assert (error.source, error.path) == ("bastion.yaml", path)
    assert fragment in error.message
    assert error.message.startswith(f"bastion.yaml: {path}: ")
    assert error.error == "invalid_config"


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
        ("http://127.0.0.1:9000", False, "issuer is plain http: set allow_insecure_http: true"),
        ("http://localhost", False, "issuer is plain http: set allow_insecure_http: true"),
        ("http://idp.example", False, "issuer must be an https URL"),
        ("http://idp.example", True, "issuer must be an https URL"),
        ("http://10.0.0.1", True, "issuer must be an https URL"),
        ("http://127.0.0.1.nip.io", True, "issuer must be an https URL"),
        ("http://localhost.evil.example", True, "issuer must be an https URL"),
        ("ftp://idp.example", True, "issuer must be an https URL"),
        ("idp.example", False, "issuer must be an https URL"),
        ("https://", False, "issuer must be an https URL"),
    ],
)
def test_http_issuer_only_on_loopback_when_allowed(issuer: str, allow: bool, fragment: str | None) -> None:
    data = _with(identity_providers=[{"name": "corp", "issuer": issuer, "allow_insecure_http": allow}])
    if fragment is None:
        assert parse_config(data).identity_providers[0].issuer == issuer
    else:
        error = _error(data)
        assert error.path == "identity_providers[0]"
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
        assert "jwks_uri" in _error(data).message


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
    data = _with(sessions={"key": {"file": str(secret_file)}}, signing={"key": {"env": "SIGNING_JWK"}})
    loaded = load_config(_write(tmp_path, data), environ={"SIGNING_JWK": "{}"})
    assert loaded.secrets == {"sessions.key": value, "signing.key": "{}"}


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
