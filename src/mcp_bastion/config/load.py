"""Loading the configuration: YAML file + environment → one validated object.

This is the only module that reads the environment. Errors name the file, the key
path (``servers[0].upstream``) and what was expected, so a user can fix them without
reading code. `check-config` and `serve` both load through `load_config`, so a config
`check-config` accepts (secrets included) is one `serve` starts with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigError
from .checks import check_audit_destination, check_policies, check_secrets
from .edge import check_tls_files
from .explain import explain, key_path
from .model import BastionConfig, SecretRef

__all__ = ["LoadedConfig", "load_config", "parse_config", "read_secret"]

MAX_CONFIG_BYTES = 1_048_576  # a config larger than this is a mistake, not a config


@dataclass(frozen=True)
class LoadedConfig:
    """The validated config plus the secrets it names, read once at start-up."""

    config: BastionConfig
    secrets: Mapping[str, str]
    path: str | None = None

    def secret(self, where: str) -> str | None:
        return self.secrets.get(where)


def load_config(
    path: str | Path, environ: Mapping[str, str] | None = None, *, read_secrets: bool = True
) -> LoadedConfig:
    """Read, validate and resolve the config at ``path``; raise ConfigError on any problem.

    The Cedar policy files it names are read and validated either way (they belong with the
    config, not with this machine's secrets). With ``read_secrets`` (what `serve` does), the
    secrets are read and their contents checked, and the audit file's place is checked:
    everything `serve` needs from this machine. Without it, only the file itself and its
    policies are checked (`check-config --skip-secrets`, e.g. in CI).
    """
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror})", source=source) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"file is larger than {MAX_CONFIG_BYTES} bytes", source=source)
    try:
        data = _parse_yaml(raw, source)
    except ConfigError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{problem}", source=source, path=where) from None
    except RecursionError:
        # PyYAML's composer recurses once per nesting level ("[[[[…").
        raise ConfigError("not valid YAML: nested too deeply", source=source) from None
    except Exception as exc:
        # PyYAML's constructors let plain errors escape for values their tags cannot hold:
        # ValueError for 2020-02-30 or an integer past CPython's digit limit (CVE-2020-10735),
        # IndexError, KeyError or AttributeError for an empty `!!float`, `!!bool` or `!!timestamp`.
        detail = f" ({exc})" if isinstance(exc, ValueError) else ""
        raise ConfigError(f"a value cannot be read{detail}", source=source) from None
    config = parse_config(data, source=source)
    check_policies(config, source)
    if not read_secrets:
        return LoadedConfig(config, {}, source)
    secrets = _resolve_secrets(config, os.environ if environ is None else environ, source)
    check_secrets(config, secrets, source)
    check_audit_destination(config, source)
    check_tls_files(config, source)
    return LoadedConfig(config, secrets, source)


def _parse_yaml(raw: bytes, source: str) -> Any:
    """YAML's safe subset, refusing a key repeated in one mapping (YAML would keep the last silently)."""
    loader = yaml.SafeLoader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_duplicate_keys(loader, node, source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _refuse_duplicate_keys(loader: yaml.SafeLoader, root: yaml.Node, source: str) -> None:
    # Iterative, and each node once: aliases may share (or, via anchors, contain) nodes,
    # and a file of nested aliases must not cost more than its nodes.
    seen_nodes: set[int] = set()
    todo: list[tuple[yaml.Node, tuple[int | str, ...]]] = [(root, ())]
    while todo:
        node, loc = todo.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        children: list[tuple[yaml.Node, tuple[int | str, ...]]] = []
        if isinstance(node, yaml.SequenceNode):
            children = [(child, (*loc, i)) for i, child in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    # `<<: *defaults`: keys written here override merged ones, as YAML intends.
                    children.append((value_node, loc))
                    continue
                line = key_node.start_mark.line + 1
                name = "(a non-scalar key)"
                if isinstance(key_node, yaml.ScalarNode):
                    # The key as YAML reads it: `1` and `0x1` are one key, `port` and "port" too.
                    key = loader.construct_object(key_node, deep=True)
                    name = str(key)
                    if key in first_line:
                        raise ConfigError(
                            f"this key appears twice in one mapping, on lines {first_line[key]} and {line} "
                            "(YAML would silently keep only the last value): keep one",
                            source=source,
                            path=key_path((*loc, name)),
                        )
                    first_line[key] = line
                children.append((value_node, (*loc, name)))
        todo.extend(reversed(children))  # depth first, in file order: the first duplicate is reported


def parse_config(data: Any, *, source: str = "<config>") -> BastionConfig:
    """Validate already-parsed data into the config model."""
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of keys", source=source)
    try:
        return BastionConfig.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, source) from None


def read_secret(ref: SecretRef, environ: Mapping[str, str], where: str, source: str = "") -> str:
    """The secret's value from its environment variable or file; ConfigError if unavailable."""
    if ref.env is not None:
        value = environ.get(ref.env)
        if not value:
            raise ConfigError(
                f"environment variable {ref.env} is not set or empty",
                source=source,
                path=where,
                hint=f"set it where mcp-bastion runs; {_SKIP_SECRETS}",
            )
        return value
    assert ref.file is not None
    try:
        value = Path(ref.file).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read secret file {ref.file!r} ({_reason(exc)})",
            source=source,
            path=where,
            hint=f"the file must exist and be readable where mcp-bastion runs; {_SKIP_SECRETS}",
        ) from None
    if not value:
        raise ConfigError(f"secret file {ref.file!r} is empty", source=source, path=where)
    return value


_SKIP_SECRETS = "`mcp-bastion check-config --skip-secrets FILE` checks the rest without reading secrets"


def _reason(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return exc.strerror or str(exc)


def _resolve_secrets(config: BastionConfig, environ: Mapping[str, str], source: str) -> dict[str, str]:
    refs: dict[str, SecretRef] = {}
    for i, server in enumerate(config.servers):
        if server.upstream_auth.secret is not None:
            refs[f"servers[{i}].upstream_auth.secret"] = server.upstream_auth.secret
        for j, spec in enumerate(server.filters):
            if spec.type == "guard" and spec.secret is not None:
                refs[f"servers[{i}].filters[{j}].secret"] = spec.secret
        for name, value in server.env.items():
            if isinstance(value, SecretRef):  # a stdio plug-in's secret (docs/stdio.md)
                refs[f"servers[{i}].env.{name}"] = value
    for i, provider in enumerate(config.identity_providers):
        if provider.facade is not None:
            refs[f"identity_providers[{i}].facade.client_secret"] = provider.facade.client_secret
            state_redis = provider.facade.state.redis
            if state_redis is not None and state_redis.password is not None:
                password = state_redis.password
                where = f"identity_providers[{i}].facade.state.redis.password"
                refs[where] = SecretRef(env=password.env, file=password.file)
    if config.sessions.key is not None:
        refs["sessions.key"] = config.sessions.key
    if config.signing.key is not None:
        refs["signing.key"] = config.signing.key
    for i, ref in enumerate(config.sessions.previous_keys):
        refs[f"sessions.previous_keys[{i}]"] = ref
    for i, ref in enumerate(config.signing.previous_keys):
        refs[f"signing.previous_keys[{i}]"] = ref
    for i, provider in enumerate(config.identity_providers):  # the gateway as the IdP's client
        if provider.client is not None and provider.client.secret is not None:
            refs[f"identity_providers[{i}].client.secret"] = provider.client.secret
        if provider.client is not None and provider.client.private_key is not None:
            refs[f"identity_providers[{i}].client.private_key"] = provider.client.private_key
    redis = config.quotas.redis
    if redis is not None and redis.password is not None:
        refs["quotas.redis.password"] = SecretRef(env=redis.password.env, file=redis.password.file)
    if config.audit.webhook is not None and config.audit.webhook.secret is not None:
        refs["audit.webhook.secret"] = config.audit.webhook.secret
    if config.audit.otlp is not None and config.audit.otlp.secret is not None:
        refs["audit.otlp.secret"] = config.audit.otlp.secret
    return {where: read_secret(ref, environ, where, source) for where, ref in refs.items()}
