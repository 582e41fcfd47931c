"""The `servers` section: one protected MCP server each, its upstream (a URL or a command),
how the gateway authenticates to it, and its per-tool policy, pinning and safety filters."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .base import Model, Name, Scope, SecretRef, http_url, refuse, unique
from .edge import UpstreamTlsConfig
from .filters import FilterConfig
from .identity import ExchangeConfig
from .policy import PolicyFile
from .stdio import StdioOptions

__all__ = ["PinningConfig", "ServerConfig", "ToolPolicy", "UpstreamAuthConfig"]


class UpstreamAuthConfig(Model):
    """How the gateway authenticates itself to an upstream. The client's token never goes upstream."""

    type: Literal["none", "static", "minted", "exchange", "obo", "client_credentials"] = "minted"
    header: str = Field(default="Authorization", pattern=r"^[A-Za-z0-9-]{1,64}$")
    secret: SecretRef | None = Field(default=None, description="For 'static': the header value's source.")
    # Minted tokens live briefly: a leaked one is useless within a minute (RFC 8693 §2.1 spirit).
    ttl_seconds: int = Field(default=60, ge=10, le=3600)
    audience: str | None = Field(
        default=None, description="For 'minted': `aud`; defaults to the upstream URL."
    )
    exchange: ExchangeConfig | None = Field(
        default=None,
        description="For 'exchange', 'obo', 'client_credentials': the IdP and what to ask it for.",
    )

    @model_validator(mode="after")
    def _exchange_for_idp_types(self) -> UpstreamAuthConfig:
        by_idp = self.type in ("exchange", "obo", "client_credentials")
        if by_idp and self.exchange is None:
            raise refuse(f"required key is missing: type {self.type!r} names its IdP here", "exchange")
        if not by_idp and self.exchange is not None:
            raise refuse(f"only used with exchange, obo, client_credentials (not {self.type!r})", "exchange")
        return self

    @model_validator(mode="after")
    def _secret_for_static(self) -> UpstreamAuthConfig:
        if self.type == "static" and self.secret is None:
            raise refuse(
                "required key is missing: type 'static' sends this secret as the header value; "
                "give it as {env: VARIABLE} or {file: PATH}",
                "secret",
            )
        if self.type != "static" and self.secret is not None:
            raise refuse(f"only used with type 'static' (this one is type {self.type!r})", "secret")
        return self


class PinningConfig(Model):
    """Pinned tool definitions (docs/pinning.md): what to do when an upstream's tools change."""

    # `record` by default: it refuses nothing, so it cannot break a working deployment, and it
    # holds the annotation ratchet (a tool that starts claiming to be read-only keeps needing
    # the scopes it needed) and logs every rug pull; `enforce` needs a reviewed lockfile.
    mode: Literal["off", "record", "enforce"] = Field(
        default="record",
        description="`off`: nothing hashed; `record`: changes logged and audited, first seen (or the lockfile) "
        "approved; `enforce`: changed or unapproved tools withheld until approved in the lockfile.",
    )
    lockfile: str | None = Field(
        default=None,
        description="The approved definitions (`mcp-bastion pin` writes it); required by `enforce`. "
        "A relative path starts at the config file's folder, as policy files do.",
    )

    @model_validator(mode="after")
    def _lockfile_for_enforce(self) -> PinningConfig:
        if self.mode == "enforce" and self.lockfile is None:
            raise refuse(
                "required key is missing: enforce withholds what the lockfile does not approve; "
                "`mcp-bastion pin --config FILE` writes one from the live catalogs",
                "lockfile",
            )
        if self.mode == "off" and self.lockfile is not None:
            raise refuse("only used with mode 'record' or 'enforce' (this one is 'off')", "lockfile")
        return self


class ToolPolicy(Model):
    scopes: tuple[Scope, ...] = Field(description="Scopes a caller needs for this tool (all of them).")


class ServerConfig(Model):
    name: Name = Field(
        description="Public path segment: the server is served at <public_base_url>/<name>/mcp."
    )
    upstream: str | None = Field(
        default=None, description="The upstream MCP endpoint URL (or `command` for a stdio plug-in)."
    )
    auth: bool = Field(default=True, description="Turn authentication off for this server (benchmarks only).")
    title: str | None = Field(default=None, description="`resource_name` in the protected resource metadata.")
    identity_providers: tuple[Name, ...] = Field(
        default=(), description="Names of the IdPs trusted for this server; empty = all."
    )
    upstream_auth: UpstreamAuthConfig = UpstreamAuthConfig()
    upstream_tls: UpstreamTlsConfig | None = Field(
        default=None, description="For an https upstream: the CA bundle, and a client certificate (mTLS)."
    )
    tools: dict[str, ToolPolicy] = Field(
        default_factory=dict,
        description="Per-tool scope overrides; each scope must be defined (scopes registry, "
        "scopes.implies, or this server's `scopes`).",
    )
    scopes: tuple[Scope, ...] = Field(default=(), description="Extra scopes this server defines.")
    # Annotations come from the upstream and are untrusted; they can only pick between the
    # registry's read and write scopes, never undercut an override above.
    trust_annotations: bool = True
    destructive_scopes: tuple[Scope, ...] | None = Field(
        default=None, description="Scopes for tools annotated destructive; default: the write scope."
    )
    timeout_seconds: float = Field(default=60, gt=0, le=3600)
    policy_files: tuple[PolicyFile, ...] = Field(
        default=(),
        description="Cedar policy files for this server only, after `policy.files`; relative to this "
        "config file's folder.",
    )
    # Step-up (MCP authorization §Step-Up): a client that cannot see a tool never asks for the
    # scope it needs, so by default a list also shows what a scope the server publishes would
    # unlock, marked with the scopes it needs; `callable` lists only what the token may call now.
    tools_list: Literal["reachable", "callable"] = Field(
        default="reachable",
        description=(
            "Which tools tools/list shows: `reachable` = callable now plus those a step-up to this "
            "server's scopes would allow (marked in _meta); `callable` = only what the token may call now."
        ),
    )

    pinning: PinningConfig = PinningConfig()
    # A stdio plug-in instead of a URL (docs/stdio.md): argv, never a shell string.
    command: tuple[Annotated[str, Field(min_length=1)], ...] | None = Field(
        default=None,
        min_length=1,
        description="A stdio MCP server's argv (run without a shell), instead of `upstream`.",
    )
    cwd: str | None = Field(default=None, description="The plug-in's working directory.")
    env: dict[str, str | SecretRef] = Field(
        default_factory=dict,
        description="The plug-in's whole environment (nothing else is inherited); a value may be "
        "{env: VARIABLE} or {file: PATH}.",
    )
    stdio: StdioOptions = StdioOptions()

    @model_validator(mode="after")
    def _upstream_or_command(self) -> ServerConfig:
        if self.upstream is None and self.command is None:
            raise refuse(
                "required key is missing: give `upstream` (a URL) or `command` (a stdio plug-in's argv)",
                "upstream",
            )
        if self.upstream is not None and self.command is not None:
            raise refuse(
                "give exactly one of `upstream` (a URL) and `command` (a stdio plug-in's argv)", "upstream"
            )
        if self.command is None and (self.cwd is not None or self.env):
            raise refuse(
                "only used with `command` (a stdio plug-in)", "cwd" if self.cwd is not None else "env"
            )
        if self.command is not None and self.upstream_tls is not None:
            # A plug-in is a local process on pipes: a TLS setting would be ignored silently.
            raise refuse("only used with an https `upstream`, not with `command`", "upstream_tls")
        if self.command is not None and self.upstream_auth.type != "minted":
            raise refuse(
                "a stdio plug-in gets the caller's identity as a token the gateway mints: type must be 'minted'",
                "upstream_auth",
                "type",
            )
        for name in self.env:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$", name):
                raise refuse(f"{name!r} is not an environment variable name", "env", name)
        return self

    @model_validator(mode="after")
    def _exchange_needs_auth(self) -> ServerConfig:
        if not self.auth and self.upstream_auth.type in ("exchange", "obo"):
            # With auth off there is no caller's token to exchange: every call would fail (502).
            raise refuse(
                f"type {self.upstream_auth.type!r} exchanges the caller's token, and with auth: false "
                "there is none: use client_credentials, minted or static",
                "upstream_auth",
                "type",
            )
        return self

    @model_validator(mode="after")
    def _enforce_needs_auth(self) -> ServerConfig:
        if self.pinning.mode == "enforce" and not self.auth:
            raise refuse(
                "enforce needs auth: true: with auth off no call is decided, so nothing could be withheld",
                "pinning",
                "mode",
            )
        return self

    filters: tuple[FilterConfig, ...] = Field(
        default=(),
        max_length=32,
        description="Safety filters around each tool call, in order (docs/safety.md).",
    )

    @field_validator("upstream")
    @classmethod
    def _upstream_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value, "use upstream_auth")

    @model_validator(mode="after")
    def _filter_ids(self) -> ServerConfig:
        unique(self.filters, "filters", "id", "a filter's id names it in the audit feed")
        return self
