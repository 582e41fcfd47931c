"""Loading the configuration: YAML file + environment → one validated object.

This is the only module that reads the environment. Errors name the file, the key
path (``servers[0].upstream``) and what was expected, so a user can fix them without
reading code.
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
    """Read, validate and resolve the config at ``path``; raise ConfigError on any problem."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror})", source=source) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"file is larger than {MAX_CONFIG_BYTES} bytes", source=source)
    try:
        data = yaml.safe_load(raw)
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
    if not read_secrets:
        return LoadedConfig(config, {}, source)
    return LoadedConfig(
        config, _resolve_secrets(config, os.environ if environ is None else environ, source), source
    )


def parse_config(data: Any, *, source: str = "<config>") -> BastionConfig:
    """Validate already-parsed data into the config model."""
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of keys", source=source)
    try:
        return BastionConfig.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, source) from None


def _explain(exc: ValidationError, source: str) -> ConfigError:
    errors = exc.errors(include_url=False)
    locations = [tuple(err["loc"]) for err in errors]
    lines = []
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "too_short" and any(o != loc and o[: len(loc)] == loc for o in locations):
            continue  # a container "too short" only because its items failed: noise
        lines.append(f"{_key_path(loc) or '(top level)'}: {_message(err)}")
    first, *rest = lines
    path, _, message = first.partition(": ")
    more = f" (and {len(rest)} more: {'; '.join(rest)})" if rest else ""
    return ConfigError(message + more, source=source, path=path, hint="docs/config.md describes every key")


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "string_pattern_mismatch":
        return f"{err['input']!r} has characters not allowed here (expected {_PATTERN_HELP.get(err['ctx']['pattern'], 'the documented format')})"
    if kind == "extra_forbidden":
        return "unknown key (check its spelling and indentation)"
    if kind == "missing":
        return "required key is missing"
    return str(err["msg"]).removeprefix("Value error, ")


_PATTERN_HELP = {
    r"^[a-z0-9][a-z0-9_-]{0,62}$": "a lower-case name of letters, digits, '-' and '_'",
    r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$": "an OAuth scope token: printable ASCII without spaces, quotes or backslashes",
    r"^[A-Za-z0-9-]{1,64}$": "an HTTP header name",
}


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_secret(ref: SecretRef, environ: Mapping[str, str], where: str, source: str = "") -> str:
    """The secret's value from its environment variable or file; ConfigError if unavailable."""
    if ref.env is not None:
        value = environ.get(ref.env)
        if not value:
            raise ConfigError(
                f"environment variable {ref.env} is not set or empty", source=source, path=where
            )
        return value
    assert ref.file is not None
    try:
        return Path(ref.file).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read secret file {ref.file!r} ({exc})", source=source, path=where
        ) from None


def _resolve_secrets(config: BastionConfig, environ: Mapping[str, str], source: str) -> dict[str, str]:
    refs: dict[str, SecretRef] = {}
    for i, server in enumerate(config.servers):
        if server.upstream_auth.secret is not None:
            refs[f"servers[{i}].upstream_auth.secret"] = server.upstream_auth.secret
    if config.sessions.key is not None:
        refs["sessions.key"] = config.sessions.key
    if config.signing.key is not None:
        refs["signing.key"] = config.signing.key
    return {where: read_secret(ref, environ, where, source) for where, ref in refs.items()}
