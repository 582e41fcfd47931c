"""What a user reads when the file is wrong: the full key path, what was found, what was expected,
in the file's own words (issue 9: no "valid tuple", no model class names, no secret repeated)."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_bastion.config import CONFIG_REFERENCE_URL
from mcp_bastion.config.explain import key_path

from .configs import MINIMAL, refusal
from .configs import edit as _with

SERVER = MINIMAL["servers"][0]

# (config, key path, the whole message after "bastion.yaml: <key path>: ")
CASES: list[tuple[dict[str, Any], str, str]] = [
    # --- the shape of values ---------------------------------------------------------------
    (
        _with(identity_providers="corp"),
        "identity_providers",
        "expected a list, found the text 'corp' (a list of one is written [corp])",
    ),
    (
        _with(trusted_proxies="10.0.0.0/8"),
        "trusted_proxies",
        "expected a list, found the text '10.0.0.0/8' (a list of one is written [10.0.0.0/8])",
    ),
    (_with(servers={"demo": SERVER}), "servers", "expected a list, found a mapping"),
    (
        _with(listen="0.0.0.0:8000"),
        "listen",
        "expected a mapping of keys (key: value), found the text '0.0.0.0:8000'",
    ),
    (_with(servers=["demo"]), "servers[0]", "expected a mapping of keys (key: value), found the text 'demo'"),
    (
        _with(servers__0__tools=["drop"]),
        "servers[0].tools",
        "expected a mapping of keys (key: value), found a list of 1 item",
    ),
    (_with(public_base_url=None), "public_base_url", "expected text, found an empty value (null)"),
    (_with(listen={"port": "http"}), "listen.port", "expected a whole number, found the text 'http'"),
    (_with(listen={"port": 80.5}), "listen.port", "expected a whole number, found 80.5"),
    (_with(servers__0__auth="maybe"), "servers[0].auth", "expected true or false, found the text 'maybe'"),
    (
        _with(servers__0__timeout_seconds="1m"),
        "servers[0].timeout_seconds",
        "expected a number, found the text '1m'",
    ),
    (
        _with(servers__0__upstream_auth={"type": "mtls"}),
        "servers[0].upstream_auth.type",
        "expected 'none', 'static', 'minted', 'exchange', 'obo' or 'client_credentials', found the text 'mtls'",
    ),
    (
        _with(identity_providers__0__algorithms=["HS256"]),
        "identity_providers[0].algorithms[0]",
        "expected 'RS256', 'PS256', 'ES256' or 'EdDSA', found the text 'HS256'",
    ),
    (
        _with(identity_providers__0__algorithms=["none"]),
        "identity_providers[0].algorithms[0]",
        "expected 'RS256', 'PS256', 'ES256' or 'EdDSA', found the text 'none'",
    ),
    # --- bounds ------------------------------------------------------------------------------
    (_with(listen={"port": 99999}), "listen.port", "must be at most 65535, found 99999"),
    (_with(listen={"port": -1}), "listen.port", "must be at least 0, found -1"),
    (_with(listen={"workers": 0}), "listen.workers", "must be at least 1, found 0"),
    (
        _with(identity_providers__0__leeway_seconds=301),
        "identity_providers[0].leeway_seconds",
        "must be at most 300, found 301",
    ),
    (
        _with(identity_providers__0__max_token_lifetime_seconds=0),
        "identity_providers[0].max_token_lifetime_seconds",
        "must be more than 0, found 0",
    ),
    (
        _with(limits={"max_token_bytes": 10**9}),
        "limits.max_token_bytes",
        "must be at most 65536, found 1000000000",
    ),
    (_with(servers=[]), "servers", "needs at least 1 item, found 0"),
    (
        _with(identity_providers__0__algorithms=[]),
        "identity_providers[0].algorithms",
        "needs at least 1 item, found 0",
    ),
    (
        _with(identity_providers=[{"name": f"p{i}", "issuer": f"https://i{i}.example"} for i in range(33)]),
        "identity_providers",
        "takes at most 32 items, found 33",
    ),
    # --- keys --------------------------------------------------------------------------------
    (
        _with(servers__0__upstream=...),
        "servers[0].upstream",
        "required key is missing: give `upstream` (a URL) or `command` (a stdio plug-in's argv)",
    ),
    (_with(servers=...), "servers", "required key is missing"),
    (
        _with(listen={"hots": "0.0.0.0"}),
        "listen.hots",
        "unknown key (did you mean 'host'? check its spelling and indentation; expected one of: host, port, workers, drain, tls)",
    ),
    (
        _with(colour="blue"),
        "colour",
        "unknown key (check its spelling and indentation; expected one of: public_base_url, trusted_proxies, "
        "allowed_hosts, listen, identity_providers, servers, scopes, origins, limits, audit, sessions, signing, policy, quotas, telemetry)",
    ),
    (
        _with(servers__0__tools={"drop": {"scope": ["admin"]}}),
        "servers[0].tools.drop.scope",
        "unknown key (did you mean 'scopes'? check its spelling and indentation; expected one of: scopes) "
        "(and 1 more: servers[0].tools.drop.scopes: required key is missing)",
    ),
    (
        _with(identity_providers__0__leeway_secs=5),
        "identity_providers[0].leeway_secs",
        "unknown key (did you mean 'leeway_seconds'? check its spelling and indentation; expected one of: "
        "name, issuer, discovery, jwks_uri, algorithms, leeway_seconds, require_typ, max_token_lifetime_seconds, "
        "claims, jwks_ttl_seconds, jwks_refetch_cooldown_seconds, fetch_timeout_seconds, allow_private_network, "
        "allow_insecure_http, facade, preset, client, introspection, audiences, machine_clients, entra)",
    ),
    (
        _with(servers__0__tools={1: {"scopes": ["admin"]}}),
        "servers[0].tools['1']",
        "a key must be text, found 1 (put it in quotes)",
    ),
    # --- formats -----------------------------------------------------------------------------
    (
        _with(servers__0__name="Demo"),
        "servers[0].name",
        "the text 'Demo' has characters not allowed here (expected a lower-case name of letters, digits, '-' and '_')",
    ),
    (
        _with(servers__0__tools={"t": {"scopes": ["has space"]}}),
        "servers[0].tools.t.scopes[0]",
        "the text 'has space' has characters not allowed here (expected an OAuth scope token: printable ASCII "
        "without spaces, quotes or backslashes)",
    ),
    (
        _with(servers__0__upstream="ftp://files.example"),
        "servers[0].upstream",
        "must be an http(s) URL with a host",
    ),
    (
        _with(servers__0__upstream="https://user:pw@up.example"),
        "servers[0].upstream",
        "must not carry credentials; use upstream_auth",
    ),
    (_with(public_base_url="gw.example"), "public_base_url", "must be an absolute http(s) URL"),
    (
        _with(public_base_url="https://gw.example/?x=1"),
        "public_base_url",
        "must not have a query, fragment or credentials",
    ),
    (_with(trusted_proxies=["10.0.0.0/33"]), "trusted_proxies", "'10.0.0.0/33' is not an IP network (CIDR)"),
    # --- secrets: never inline, and the inline value never repeated --------------------------
    (
        _with(sessions={"key": "c2VjcmV0LXNlc3Npb24ta2V5"}),
        "sessions.key",
        "a secret is never written in the config file: give it as {env: VARIABLE} (an environment variable) "
        "or {file: PATH} (a file holding it)",
    ),
    (
        _with(signing={"key": {"kty": "EC", "d": "private-part"}}),
        "signing.key.kty",
        "unknown key (check its spelling and indentation; expected one of: env, file) (and 1 more: "
        "signing.key.d: unknown key (check its spelling and indentation; expected one of: env, file))",
    ),
    (
        _with(servers__0__upstream_auth={"type": "static", "secret": "Bearer inline-secret"}),
        "servers[0].upstream_auth.secret",
        "a secret is never written in the config file: give it as {env: VARIABLE} (an environment variable) "
        "or {file: PATH} (a file holding it)",
    ),
    (
        _with(servers__0__upstream_auth={"type": "static"}),
        "servers[0].upstream_auth.secret",
        "required key is missing: type 'static' sends this secret as the header value; "
        "give it as {env: VARIABLE} or {file: PATH}",
    ),
    (
        _with(servers__0__upstream_auth={"secret": {"env": "X"}}),
        "servers[0].upstream_auth.secret",
        "only used with type 'static' (this one is type 'minted')",
    ),
    (
        _with(servers__0__upstream_auth={"type": "static", "secret": {}}),
        "servers[0].upstream_auth.secret",
        "found neither 'env' nor 'file': give exactly one, e.g. {env: VARIABLE}",
    ),
    (
        _with(sessions={"key": {"env": "A", "file": "/run/a"}}),
        "sessions.key",
        "found both 'env' and 'file': give exactly one of them",
    ),
    (
        _with(servers__0__pinning={"mode": "enforce"}),
        "servers[0].pinning.lockfile",
        "required key is missing: enforce withholds what the lockfile does not approve; "
        "`mcp-bastion pin --config FILE` writes one from the live catalogs",
    ),
    (
        _with(servers__0__pinning={"mode": "off", "lockfile": "x.json"}),
        "servers[0].pinning.lockfile",
        "only used with mode 'record' or 'enforce' (this one is 'off')",
    ),
    (
        _with(servers__0__auth=False, servers__0__pinning={"mode": "enforce", "lockfile": "x.json"}),
        "servers[0].pinning.mode",
        "enforce needs auth: true: with auth off no call is decided, so nothing could be withheld",
    ),
    (
        _with(servers__0__pinning={"mode": "strict"}),
        "servers[0].pinning.mode",
        "expected 'off', 'record' or 'enforce', found the text 'strict'",
    ),
    # --- cross-references: the exact key, and which other one -------------------------------
    (
        _with(servers=[SERVER, {**SERVER, "upstream": "http://127.0.0.1:9002/mcp"}]),
        "servers[1].name",
        "'demo' is also the name of servers[0]: server names must be unique (each is a URL path segment)",
    ),
    (
        _with(
            identity_providers=[
                MINIMAL["identity_providers"][0],
                {"name": "corp", "issuer": "https://b.example"},
            ]
        ),
        "identity_providers[1].name",
        "'corp' is also the name of identity_providers[0]: identity provider names must be unique",
    ),
    (
        _with(
            identity_providers=[
                MINIMAL["identity_providers"][0],
                {"name": "b", "issuer": "https://idp.example"},
            ]
        ),
        "identity_providers[1].issuer",
        "'https://idp.example' is also the issuer of identity_providers[0]: a token's `iss` must choose one "
        "identity provider",
    ),
    (
        _with(servers__0__identity_providers=["corp", "okta"]),
        "servers[0].identity_providers",
        "names identity providers that are not defined: 'okta' (defined in identity_providers: 'corp')",
    ),
    (
        _with(identity_providers=[]),
        "identity_providers",
        "none are configured, but servers[0] ('demo') requires authentication: add an identity provider, "
        "or set auth: false on that server (benchmarks only)",
    ),
    (
        _with(identity_providers__0__discovery=False),
        "identity_providers[0].jwks_uri",
        "required key is missing: with discovery: false, the keys come from jwks_uri",
    ),
    (
        _with(identity_providers__0__issuer="http://idp.example"),
        "identity_providers[0].issuer",
        "expected an https URL, found 'http://idp.example'",
    ),
    (_with(audit={"sink": "file"}), "audit.path", "required key is missing: sink 'file' writes to this path"),
    # --- scopes a tool override names must be defined ----------------------------------------
    (
        _with(servers__0__tools={"drop": {"scopes": ["admn"]}}),
        "servers[0].tools.drop.scopes[0]",
        "'admn' is not a defined scope: expected one of admin, tools.read, tools.write; "
        "to define a new one, list it in servers[0].scopes",
    ),
    (
        _with(servers__0__tools={"send.mail": {"scopes": ["tools.write", "mail.send"]}}),
        "servers[0].tools['send.mail'].scopes[1]",
        "'mail.send' is not a defined scope: expected one of admin, tools.read, tools.write; "
        "to define a new one, list it in servers[0].scopes",
    ),
    (
        _with(servers__0__destructive_scopes=["tools.writ"]),
        "servers[0].destructive_scopes[0]",
        "'tools.writ' is not a defined scope: expected one of admin, tools.read, tools.write; "
        "to define a new one, list it in servers[0].scopes",
    ),
    (
        # A scope another server defines is not defined here: each server's scopes_supported is its own.
        _with(
            servers=[
                {**SERVER, "scopes": ["mail.send"]},
                {
                    "name": "b",
                    "upstream": "http://127.0.0.1:9002/mcp",
                    "tools": {"t": {"scopes": ["mail.send"]}},
                },
            ]
        ),
        "servers[1].tools.t.scopes[0]",
        "'mail.send' is not a defined scope: expected one of admin, tools.read, tools.write; "
        "to define a new one, list it in servers[1].scopes",
    ),
]


@pytest.mark.parametrize(("data", "path", "message"), CASES, ids=[c[1] + ":" + c[2][:30] for c in CASES])
def test_each_refusal_names_the_key_what_was_found_and_what_is_expected(
    data: dict[str, Any], path: str, message: str
) -> None:
    error = refusal(data)
    assert (error.source, error.path) == ("bastion.yaml", path)
    assert error.message == f"bastion.yaml: {path}: {message}"
    assert error.error == "invalid_config"
    # Pydantic's own vocabulary never reaches the user.
    for jargon in ("tuple", "Input should", "dictionary or instance", "SecretRef", "Config", "Value error"):
        assert jargon not in error.message


def test_the_hint_is_a_published_page_not_a_local_path() -> None:
    # An installed user has no docs/ folder (issue 9).
    error = refusal(_with(colour="blue"))
    assert error.hint == f"every key is described at {CONFIG_REFERENCE_URL}"
    assert CONFIG_REFERENCE_URL.startswith("https://")


@pytest.mark.parametrize(
    "data",
    [
        _with(sessions={"key": "do-not-print-me"}),
        _with(signing={"key": "do-not-print-me"}),
        _with(signing={"key": ["do-not-print-me"]}),
        _with(servers__0__upstream_auth={"type": "static", "secret": "do-not-print-me"}),
        _with(servers__0__upstream_auth={"type": "static", "secret": 12345678}),
    ],
)
def test_an_inline_secret_is_never_repeated(data: dict[str, Any]) -> None:
    error = refusal(data)
    assert "do-not-print-me" not in error.message
    assert "12345678" not in error.message
    assert "{env: VARIABLE}" in error.message


def test_a_dict_of_models_with_a_non_identifier_key_is_quoted() -> None:
    assert (
        key_path(("servers", 0, "tools", "send.mail", "scopes", 1))
        == "servers[0].tools['send.mail'].scopes[1]"
    )
    assert key_path(("servers", 0, "tools", "it's", "scopes")) == 'servers[0].tools["it\'s"].scopes'
    assert key_path(()) == ""


def test_several_errors_are_all_reported_in_words() -> None:
    error = refusal(_with(colour="blue", servers__0__upstream="ftp://x", listen={"port": "x"}))
    assert error.path == "colour"
    assert "(and 2 more: " in error.message
    assert "listen.port: expected a whole number, found the text 'x'" in error.message
    assert "servers[0].upstream: must be an http(s) URL with a host" in error.message


def test_a_defined_scope_passes_wherever_it_is_defined() -> None:
    from mcp_bastion.config import parse_config

    config = parse_config(
        _with(
            scopes={"implies": {"admin": ["tools.write", "tools.read", "audit.view"]}},
            servers__0__scopes=["mail.send"],
            servers__0__tools={
                "a": {"scopes": ["mail.send"]},
                "b": {"scopes": ["audit.view"]},
                "c": {"scopes": ["admin", "tools.read"]},
                "d": {"scopes": []},
            },
            servers__0__destructive_scopes=["mail.send", "tools.write"],
        )
    )
    assert config.servers[0].tools["a"].scopes == ("mail.send",)
