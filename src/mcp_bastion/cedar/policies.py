"""Loading Cedar policy files: parsed, validated against the generated schema, named.

`load_policies(config, base)` is the one way in: `check-config` and `serve` call it while they
load the config, `build_gateway` calls it for the policies it runs, and a reload is meant to
call it too, so no policy reaches a decision without having passed the validator. Every
failure is a `ConfigError` naming the config key, the file, the line of the policy and what
Cedar found wrong.

Each policy gets an id the audit feed and `policy explain` show: its `@id("…")` annotation,
or `<file>#<n>` (the n-th policy of the file, from 1). Ids are unique per server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy

from ..config.explain import key_path
from ..config.model import BastionConfig
from ..errors import ConfigError
from .schema import CONTEXT_ATTRIBUTES, cedar_schema

__all__ = [
    "LoadedPolicies",
    "PolicyBundle",
    "PolicySource",
    "context_reads",
    "load_policies",
    "split_policies",
]

MAX_POLICY_FILE_BYTES = 1_048_576
_POSITIONAL = re.compile(r"policy(\d+)")
_VALIDATOR_PREFIX = re.compile(r"^for policy `policy(\d+)`, ")


@dataclass(frozen=True)
class PolicySource:
    """One policy as written: where it is, and its Cedar JSON form (to evaluate it alone)."""

    id: str
    effect: str  # "permit" or "forbid"
    file: str  # as the config names it
    line: int  # where it starts, from 1; 0 when it could not be told
    text: str
    est: Mapping[str, Any]

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class PolicyBundle:
    """One server's policies: `policy.files`, then its own `policy_files`. `context_reads`
    are the context attributes some policy reads: only those are built for a call, and a
    tool list needs no partial evaluation when no policy reads the arguments."""

    policies: cedarpy.PolicySet
    sources: tuple[PolicySource, ...]
    context_reads: frozenset[str] = CONTEXT_ATTRIBUTES

    def source(self, policy_id: str) -> PolicySource | None:
        return next((s for s in self.sources if s.id == policy_id), None)


@dataclass(frozen=True)
class LoadedPolicies:
    schema: Mapping[str, Any]
    servers: Mapping[str, PolicyBundle]  # only the servers some policy file applies to


def load_policies(config: BastionConfig, base: Path, source: str = "") -> LoadedPolicies:
    """Read, parse and validate every policy file the config names (relative to `base`, the
    config file's folder). Raises ConfigError on the first problem."""
    schema = cedar_schema(config.policy)
    try:
        handle = cedarpy.Schema.from_json_str(json.dumps(schema))
    except ValueError as exc:  # ours, so a bug: say so plainly
        raise ConfigError(f"the generated Cedar schema was refused: {exc}", source=source) from None
    parsed: dict[str, list[PolicySource]] = {}

    def read(file: str, *where: str | int) -> list[PolicySource]:
        if file not in parsed:
            parsed[file] = _read_file(file, base, handle, source, key_path(where))
        return parsed[file]

    shared = [p for i, file in enumerate(config.policy.files) for p in read(file, "policy", "files", i)]
    servers: dict[str, PolicyBundle] = {}
    for j, server in enumerate(config.servers):
        own = [
            p
            for i, file in enumerate(server.policy_files)
            for p in read(file, "servers", j, "policy_files", i)
        ]
        if not shared and not own:
            continue
        where = key_path(("servers", j, "policy_files") if own else ("policy", "files"))
        servers[server.name] = _bundle((*shared, *own), server.name, source, where)
    return LoadedPolicies(schema, servers)


def _bundle(sources: tuple[PolicySource, ...], server: str, source: str, where: str) -> PolicyBundle:
    seen: dict[str, PolicySource] = {}
    for policy in sources:
        first = seen.get(policy.id)
        if first is not None:
            raise ConfigError(
                f"policy id {policy.id!r} is used twice for server {server!r}, at {first.where} and "
                f"{policy.where} (a file listed twice, or two @id annotations alike): ids name the "
                "rule that decided in the audit feed, so each must be unique",
                source=source,
                path=where,
            )
        seen[policy.id] = policy
    if not any(policy.effect == "permit" for policy in sources):
        raise ConfigError(
            f"no permit policy applies to server {server!r}: Cedar refuses whatever no policy "
            "permits, so every call would be refused; add `permit (principal, action, resource);` "
            "and forbid what must not happen",
            source=source,
            path=where,
        )
    document = {
        "staticPolicies": {policy.id: policy.est for policy in sources},
        "templates": {},
        "templateLinks": [],
    }
    try:
        policies = cedarpy.PolicySet.from_json_str(json.dumps(document))
    except ValueError as exc:
        raise ConfigError(f"Cedar refused the policy set: {exc}", source=source, path=where) from None
    return PolicyBundle(policies, sources, context_reads(policy.est for policy in sources))


def context_reads(ests: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The context attributes the policies read (`context.x`, `context has x`); all of them
    when some policy uses `context` otherwise (`context == {…}`), so nothing is left out."""
    found: set[str] = set()
    todo: list[Any] = list(ests)
    while todo:
        node = todo.pop()
        if isinstance(node, list):
            todo.extend(node)
        elif isinstance(node, dict):
            if node.get("Var") == "context":
                return CONTEXT_ATTRIBUTES  # used whole
            for op in (".", "has"):
                access = node.get(op)
                if isinstance(access, dict) and access.get("left") == {"Var": "context"}:
                    found.add(str(access.get("attr")))
                    node = {key: value for key, value in node.items() if key != op}
            todo.extend(node.values())
    return frozenset(found & CONTEXT_ATTRIBUTES)


def _read_file(file: str, base: Path, schema: cedarpy.Schema, source: str, where: str) -> list[PolicySource]:
    path = base / file
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read policy file {str(path)!r} ({exc.strerror}); a relative path is read from "
            "the config file's folder",
            source=source,
            path=where,
        ) from None
    if len(raw) > MAX_POLICY_FILE_BYTES:
        raise ConfigError(
            f"policy file {file!r} is larger than {MAX_POLICY_FILE_BYTES} bytes", source=source, path=where
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"policy file {file!r} is not UTF-8 text", source=source, path=where) from None
    chunks = split_policies(text)
    try:
        document = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError as exc:
        line, message = _locate_parse_error(text, chunks, str(exc))
        raise ConfigError(f"{_at(file, line)}: {message}", source=source, path=where) from None
    if document.get("templates"):
        raise ConfigError(
            f"{file}: templates (policies with ?principal or ?resource) are not supported: "
            "write the principal or resource out",
            source=source,
            path=where,
        )
    ests = sorted(document["staticPolicies"].items(), key=lambda item: _index(item[0]))
    lines = chunks if len(chunks) == len(ests) else [(0, "")] * len(ests)
    result = cedarpy.validate_policies(text, schema)
    if not result.validation_passed:
        error = result.errors[0]
        index = _index(error.policy_id) if error.policy_id else -1
        line = lines[index][0] if 0 <= index < len(lines) else 0
        message = _VALIDATOR_PREFIX.sub("", error.error)
        more = f" (and {len(result.errors) - 1} more)" if len(result.errors) > 1 else ""
        raise ConfigError(
            f"{_at(file, line)}: {message}{more}; `mcp-bastion policy schema` prints what policies may name",
            source=source,
            path=where,
        )
    return [
        PolicySource(
            _policy_id(est, file, n),
            str(est["effect"]),
            file,
            line,
            chunk or cedarpy.policies_from_json_str(json.dumps(_single(est))),
            est,
        )
        for n, ((_, est), (line, chunk)) in enumerate(zip(ests, lines, strict=True), start=1)
    ]


def _single(est: Mapping[str, Any]) -> dict[str, Any]:
    return {"staticPolicies": {"policy0": est}, "templates": {}, "templateLinks": []}


def _policy_id(est: Mapping[str, Any], file: str, n: int) -> str:
    annotated = (est.get("annotations") or {}).get("id")
    return annotated if isinstance(annotated, str) and annotated else f"{file}#{n}"


def _index(positional: str) -> int:
    match = _POSITIONAL.fullmatch(positional)
    return int(match.group(1)) if match else -1


def _at(file: str, line: int) -> str:
    return f"{file}, line {line}" if line else file


def _locate_parse_error(text: str, chunks: list[tuple[int, str]], message: str) -> tuple[int, str]:
    """Cedar's parse errors carry no position through cedarpy: parse the file's policies one
    by one to find the first that fails, and its line."""
    for line, chunk in chunks:
        try:
            cedarpy.policies_to_json_str(chunk)
        except ValueError as exc:
            return line, str(exc)
    _, rest = _scan(text)
    # Nothing failed alone: the text after the last `;` did (a policy missing its `;`).
    return (text.count("\n", 0, rest) + 1 if rest >= 0 else 0), message


def split_policies(text: str) -> list[tuple[int, str]]:
    """Each policy of a Cedar file with the line it starts on (annotations included): cut at
    each `;` outside strings and `//` comments. Only used to tell lines: Cedar parses the file."""
    spans, _ = _scan(text)
    return [(text.count("\n", 0, start) + 1, text[start:stop]) for start, stop in spans]


def _scan(text: str) -> tuple[list[tuple[int, int]], int]:
    """The (start, end) of each statement, and where unterminated text begins (-1: none)."""
    spans: list[tuple[int, int]] = []
    start = -1
    i, size = 0, len(text)
    while i < size:
        char = text[i]
        if char == "/" and text.startswith("//", i):
            newline = text.find("\n", i)
            i = size if newline < 0 else newline
            continue
        if char.isspace():
            i += 1
            continue
        if start < 0:
            start = i
        if char == '"':
            i += 1
            while i < size and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif char == ";":
            spans.append((start, i + 1))
            start = -1
        i += 1
    return spans, start
