"""Checks beyond the file's shape: what the secrets hold, where the audit file goes, and the
legal-but-risky settings worth a warning.

`load_config` runs the first two whenever it reads secrets, so `check-config` and `serve`
refuse the same configs, and `serve` refuses them before it listens. A message names the
key path and what is wrong, never a secret's value.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..urls import is_loopback
from .explain import key_path
from .model import BastionConfig, FilterConfig, ScopeRegistryConfig

__all__ = ["ConfigWarning", "check_audit_destination", "check_policies", "check_secrets", "config_warnings"]

# RFC 9110 §5.5: a field value is visible characters with spaces or tabs between them. obs-text
# (0x80-0xFF) is legal but read differently by different servers, so a secret may not use it.
_HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20\x09\x21-\x7e]*[\x21-\x7e])?")
_KEY_FOR_ALGORITHM = {
    "ES256": "a private EC key on curve P-256",
    "RS256": "a private RSA key",
    "PS256": "a private RSA key",
    "EdDSA": "a private OKP key on curve Ed25519 or Ed448",
}


def check_secrets(config: BastionConfig, secrets: Mapping[str, str], source: str = "") -> None:
    """Refuse secrets the gateway could not use: what `build_gateway` would fail on, or worse,
    accept and then fail every request with (a header value holding a line break)."""
    session_key = secrets.get("sessions.key")
    if session_key is not None:
        _check_session_key(session_key, source)
    signing_key = secrets.get("signing.key")
    if signing_key is not None:
        _check_signing_key(signing_key, config, source)
    for i in range(len(config.sessions.previous_keys)):
        if (text := secrets.get(f"sessions.previous_keys[{i}]")) is not None:
            _check_session_key(text, source, f"sessions.previous_keys[{i}]")
    for i in range(len(config.signing.previous_keys)):
        where = f"signing.previous_keys[{i}]"
        if (text := secrets.get(where)) is not None:
            _check_published_key(text, config, source, where)
    for i, provider in enumerate(config.identity_providers):  # the gateway's client assertion key
        where = f"identity_providers[{i}].client.private_key"
        if provider.client is not None and (text := secrets.get(where)) is not None:
            _check_assertion_key(text, provider.client.assertion_algorithm, where, source)
    for i, server in enumerate(config.servers):
        headers = [(f"servers[{i}].upstream_auth.secret", server.upstream_auth.header)]
        headers += [
            (f"servers[{i}].filters[{j}].secret", f.header)
            for j, f in enumerate(server.filters)
            if f.type == "guard"
        ]
        for where, header in headers:
            value = secrets.get(where)
            if value is not None:
                problem = _header_value_problem(value)
                if problem is not None:
                    raise ConfigError(
                        f"the secret cannot be sent as the {header} header: it {problem}; "
                        "expected one line of printable ASCII, spaces allowed between words (e.g. 'Bearer abc123')",
                        source=source,
                        path=where,
                    )
    webhook_secret = secrets.get("audit.webhook.secret")
    if config.audit.webhook is not None and webhook_secret is not None:
        problem = _header_value_problem(webhook_secret)
        if problem is not None:
            raise ConfigError(
                f"the secret cannot be sent as the {config.audit.webhook.header} header: it {problem}; "
                "expected one line of printable ASCII, spaces allowed between words (e.g. 'Bearer abc123')",
                source=source,
                path="audit.webhook.secret",
            )
    otlp_secret = secrets.get("audit.otlp.secret")
    if config.audit.otlp is not None and otlp_secret is not None:
        problem = _header_value_problem(otlp_secret)
        if problem is not None:
            raise ConfigError(
                f"the secret cannot be sent as the {config.audit.otlp.header} header: it {problem}; "
                "expected one line of printable ASCII, spaces allowed between words (e.g. 'Bearer abc123')",
                source=source,
                path="audit.otlp.secret",
            )


def _check_assertion_key(text: str, alg: str, where: str, source: str) -> None:
    from ..auth.idp_client import assertion_key

    try:
        assertion_key(text, alg)
    except ValueError as exc:
        raise ConfigError(f"{exc}; found {_describe_jwk(text, alg)}", source=source, path=where) from None


def _check_session_key(text: str, source: str, where: str = "sessions.key") -> None:
    # Imported here: the config package is imported by everything, these modules import much.
    from ..mcp.sessions import SessionSealer

    try:
        SessionSealer.decode_key(text)
    except ValueError as exc:
        raise ConfigError(f"{exc}; found {_describe_base64(text)}", source=source, path=where) from None


def _describe_base64(text: str) -> str:
    try:
        size = len(base64.b64decode(text.strip(), validate=True))
    except binascii.Error:
        return "text that is not base64"
    return f"base64 of {size} bytes"


def _check_signing_key(text: str, config: BastionConfig, source: str) -> None:
    from ..credentials.minted import TokenMinter

    alg = config.signing.algorithm
    try:
        TokenMinter.from_jwk(text, alg, config.public_base_url, time.time)
    except ValueError:
        raise ConfigError(
            f"expected {_KEY_FOR_ALGORITHM[alg]} as a JWK (JSON) for signing.algorithm {alg}; "
            f"found {_describe_jwk(text, alg)}",
            source=source,
            path="signing.key",
        ) from None


def _check_published_key(text: str, config: BastionConfig, source: str, where: str) -> None:
    from ..credentials.minted import published_jwk

    try:
        published_jwk(text, config.signing.algorithm)
    except ValueError as exc:
        raise ConfigError(
            f"{exc}; found {_describe_jwk(text, config.signing.algorithm)}", source=source, path=where
        ) from None


def _describe_jwk(text: str, alg: str) -> str:
    """What the key is, from its public members only (never `d` or any private part)."""
    try:
        jwk = json.loads(text)
    except ValueError:
        return "text that is not JSON (a PEM file? convert it to a JWK)"
    if not isinstance(jwk, dict):
        return "JSON that is not an object"
    if "keys" in jwk:
        return "a JWK set; give the one key itself"
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "oct":
        return "a symmetric key (kty 'oct'): its holder could verify and forge alike"
    if kty not in ("RSA", "EC", "OKP"):
        return f"a JSON object with kty {kty!r}" if kty is not None else "a JSON object without kty"
    kind = f"kty {kty!r}" + (f", crv {crv!r}" if crv is not None else "")
    if "d" not in jwk:
        return f"a public key ({kind}, no private part 'd')"
    if jwk.get("alg", alg) != alg:
        return f"a private key ({kind}) declaring alg {jwk['alg']!r}"
    return f"a private key ({kind}) that cannot sign {alg}, or is malformed"


def _header_value_problem(value: str) -> str | None:
    if _HEADER_VALUE.fullmatch(value):
        return None
    if "\r" in value or "\n" in value:
        return "holds a line break (CR or LF)"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value if c != "\t"):
        return "holds a control character"
    if any(ord(c) > 0x7E for c in value):
        return "holds a character outside ASCII"
    return "begins or ends with a space or tab"


def check_policies(config: BastionConfig, source: str = "") -> None:
    """Every Cedar policy file the config names is readable, parses, and passes the validator
    against the schema generated from this config (`cedar/`). Relative paths start at the
    config file's folder. Without policy files, nothing is read and cedarpy is not needed."""
    from ..cedar import base_folder, has_policies, read_policies

    if has_policies(config):
        read_policies(config, base_folder(source or None), source)


def check_audit_destination(config: BastionConfig, source: str = "") -> None:
    """`sink: file` opens `path` for appending at start-up: the file, or its folder, must be writable.
    Checked without creating anything."""
    _check_spool_folder(config, source)
    path = config.audit.path
    if config.audit.sink != "file" or path is None:
        return
    target = Path(path)
    problem: str | None
    if target.is_dir():
        problem = "is a folder, not a file"
    elif target.exists():
        problem = None if os.access(target, os.W_OK) else "exists but is not writable by this user"
    elif not target.parent.is_dir():
        problem = f"cannot be created: the folder {str(target.parent)!r} does not exist"
    elif not os.access(target.parent, os.W_OK | os.X_OK):
        problem = f"cannot be created: the folder {str(target.parent)!r} is not writable by this user"
    else:
        problem = None
    if problem is not None:
        raise ConfigError(f"the audit file {path!r} {problem}", source=source, path="audit.path")


def _check_spool_folder(config: BastionConfig, source: str) -> None:
    """`audit.spool.dir` is created at start-up if absent: it, or the folder it goes in, must be writable."""
    spool = config.audit.spool
    if spool is None or config.audit.sink == "none":
        return
    folder = Path(spool.dir)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        problem = f"cannot be created: {str(existing)!r} is not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"cannot be used: {str(existing)!r} is not writable by this user"
    else:
        return
    raise ConfigError(
        f"the audit spool folder {spool.dir!r} {problem}", source=source, path="audit.spool.dir"
    )


@dataclass(frozen=True)
class ConfigWarning:
    """A legal setting that weakens a protection or will surprise: the key path and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def config_warnings(config: BastionConfig, *, workers: int | None = None) -> list[ConfigWarning]:
    """Legal-but-risky settings, in file order. `workers` overrides `listen.workers` (`serve --workers`)."""
    return [
        *_address_warnings(config),
        *_identity_provider_warnings(config),
        *_server_warnings(config),
        *_implies_warnings(config.scopes),
        *_process_warnings(config, workers or config.listen.workers),
        *_facade_warnings(config, workers or config.listen.workers),
        *_telemetry_warnings(config),
    ]


def _telemetry_warnings(config: BastionConfig) -> Iterator[ConfigWarning]:
    metrics = config.telemetry.metrics
    if metrics.enabled and not is_loopback(metrics.host):
        yield ConfigWarning(
            "telemetry.metrics.host",
            f"{metrics.host} is not loopback: anyone who reaches it reads the metrics without any "
            "credential (servers, IdPs, refusal counts); keep it on a network only Prometheus reaches",
        )


def _address_warnings(config: BastionConfig) -> Iterator[ConfigWarning]:
    base = urlsplit(config.public_base_url)
    if base.scheme == "http" and not is_loopback(base.hostname or ""):
        yield ConfigWarning(
            "public_base_url",
            f"plain http on a non-loopback host ({base.hostname}): bearer tokens and session ids "
            "would cross the network unencrypted; expected https (TLS may end at a proxy in front)",
        )
    for i, cidr in enumerate(config.trusted_proxies):
        if ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
            yield ConfigWarning(
                f"trusted_proxies[{i}]",
                f"{cidr} trusts every address: any client can set X-Forwarded-Host and choose the host "
                "the Host check sees; list only your load balancers",
            )
    for i, origin in enumerate(config.origins.allow):
        problem = _origin_problem(origin)
        if problem is not None:
            yield ConfigWarning(f"origins.allow[{i}]", problem)


def _origin_problem(origin: str) -> str | None:
    if origin == "null":
        return (
            "'null' admits opaque origins (sandboxed iframes, file:// pages): any such page may call "
            "the gateway from a browser"
        )
    parts = urlsplit(origin)
    if (
        parts.scheme in ("http", "https")
        and parts.hostname
        and not any((parts.path, parts.query, parts.fragment, parts.username))
    ):
        return None
    return (
        f"{origin!r} is not an origin (expected scheme://host[:port], no path or trailing slash): "
        "it never matches, so browsers on it get 403"
    )


def _identity_provider_warnings(config: BastionConfig) -> Iterator[ConfigWarning]:
    for i, idp in enumerate(config.identity_providers):
        # A preset checks its IdP's own access-token marker instead (auth/presets.py).
        if idp.require_typ is None and idp.preset is None:
            yield ConfigWarning(
                f"identity_providers[{i}].require_typ",
                "null: any JWT this issuer signs for the resource passes as an access token, ID tokens "
                "included (RFC 9068 §4); keep it only for IdPs that do not type access tokens",
            )


def _server_warnings(config: BastionConfig) -> Iterator[ConfigWarning]:
    for i, server in enumerate(config.servers):
        who = "any caller with a valid token" if server.auth else "anyone who reaches the gateway"
        if not server.auth:
            yield ConfigWarning(
                f"servers[{i}].auth",
                f"false: {config.public_base_url}/{server.name}/mcp accepts calls without any token "
                "(for benchmarks and local experiments only)",
            )
        for name, policy in server.tools.items():
            if not policy.scopes:
                yield ConfigWarning(
                    f"{key_path(('servers', i, 'tools', name, 'scopes'))}",
                    f"empty: {who} may call tool {name!r}; list the scopes it needs",
                )
        if not server.auth and (server.policy_files or config.policy.files):
            yield ConfigWarning(
                f"servers[{i}].auth",
                "false, and Cedar policies are configured: they are not applied to this server "
                "(without a token there is no principal to decide about)",
            )
        if server.destructive_scopes == ():
            yield ConfigWarning(
                f"servers[{i}].destructive_scopes",
                f"empty: {who} may call every tool not marked read-only; list the scopes they need",
            )
        yield from _filter_warnings(server.filters, i)
        upstream = urlsplit(server.upstream or "")
        if (
            server.upstream_auth.type == "static"
            and upstream.scheme == "http"
            and not is_loopback(upstream.hostname or "")
        ):
            yield ConfigWarning(
                f"servers[{i}].upstream",
                f"plain http to {upstream.hostname}: the static upstream secret crosses the network "
                "unencrypted; expected https",
            )


def _filter_warnings(filters: tuple[FilterConfig, ...], index: int) -> Iterator[ConfigWarning]:
    for j, spec in enumerate(filters):
        where = f"servers[{index}].filters[{j}]"
        if spec.type == "guard":
            url = urlsplit(spec.url)
            if url.scheme == "http" and not is_loopback(url.hostname or ""):
                yield ConfigWarning(
                    f"{where}.url",
                    f"plain http to {url.hostname}: every screened call's arguments and results cross "
                    "the network unencrypted; expected https",
                )
            if spec.on_failure == "allow":
                yield ConfigWarning(
                    f"{where}.on_failure",
                    "allow: while the guard is down, slow or saturated, calls and results pass unscreened "
                    "(the audit feed marks them unavailable-…)",
                )
        elif spec.type == "poisoning" and spec.mode == "record":
            yield ConfigWarning(
                f"{where}.mode",
                "record: a tool whose definition is flagged is still listed and callable (only logged and audited)",
            )


def _implies_warnings(scopes: ScopeRegistryConfig) -> Iterator[ConfigWarning]:
    implies = scopes.implies or {}
    granted: set[str] = set()
    todo = list(implies.get(scopes.read, ()))
    while todo:
        scope = todo.pop()
        if scope not in granted:
            granted.add(scope)
            todo.extend(implies.get(scope, ()))
    for stronger in (scopes.write, scopes.admin):
        if stronger in granted and stronger != scopes.read:
            yield ConfigWarning(
                "scopes.implies",
                f"the read scope {scopes.read!r} implies {stronger!r}: every token that may read may "
                f"also do what {stronger!r} allows",
            )


def _process_warnings(config: BastionConfig, workers: int) -> Iterator[ConfigWarning]:
    if config.audit.sink == "none":
        yield ConfigWarning("audit.sink", "none: no audit events are recorded, allowed or denied")
    if config.sessions.key is None:
        across = (
            f"; with {workers} workers, a session opened on one is refused (404) by the others"
            if workers > 1
            else ""
        )
        yield ConfigWarning(
            "sessions.key",
            "not set: session ids are sealed with a per-process key and do not survive a restart"
            f"{across}; set it to {{env: …}} or {{file: …}} holding `openssl rand -base64 32`",
        )
    minted = any(s.upstream_auth.type == "minted" for s in config.servers)
    if config.signing.key is None and minted and workers > 1:
        yield ConfigWarning(
            "signing.key",
            f"not set, with {workers} workers: each signs minted upstream tokens with its own key and "
            "/.well-known/jwks.json shows only the answering worker's, so upstreams will refuse "
            "some tokens; set a private JWK all workers share",
        )


def _facade_warnings(config: BastionConfig, workers: int) -> Iterator[ConfigWarning]:
    """The authorization facade (`facade/`) keeps its state in process memory."""
    if workers <= 1:
        return
    for i, idp in enumerate(config.identity_providers):
        if idp.facade is not None and idp.facade.state.store == "memory":
            yield ConfigWarning(
                f"identity_providers[{i}].facade",
                f"with {workers} workers: registrations, sign-ins, codes and refresh tokens are kept per "
                "process, so a flow that moves between workers fails; run the facade with one worker, "
                "or share its state (facade.state.store: redis)",
            )
