"""Configuration of the gateway's edge beyond where it binds: how it stops (`listen.drain`),
TLS on its listener (`listen.tls`) and to its upstreams (`servers[].upstream_tls`).

Referenced from `model.py`; documented in docs/operations.md.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ConfigError

if TYPE_CHECKING:
    from .model import BastionConfig

__all__ = ["DrainConfig", "ServerTlsConfig", "UpstreamTlsConfig", "check_tls_files"]


class DrainConfig(BaseModel):
    """A graceful stop on SIGTERM (server/drain.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Under Kubernetes' default terminationGracePeriodSeconds (30): the drain must end before
    # the SIGKILL that follows, or the answers it was finishing are lost after all.
    grace_seconds: float = Field(
        default=25,
        ge=0,
        le=3600,
        description="How long requests in flight get to finish after SIGTERM; what still runs is then "
        "stopped (503, or a stream ended cleanly).",
    )
    stream_grace_seconds: float = Field(
        default=2,
        ge=0,
        le=3600,
        description="How long an open event stream (an SSE answer to a GET) runs on after SIGTERM before "
        "it is ended cleanly; at most grace_seconds.",
    )

    @model_validator(mode="after")
    def _stream_within_grace(self) -> DrainConfig:
        if self.stream_grace_seconds > self.grace_seconds:
            raise ValueError("stream_grace_seconds must not exceed grace_seconds")
        return self


class ServerTlsConfig(BaseModel):
    """TLS termination on the listener (server/tls.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    certificate: str = Field(description="PEM file: the server certificate, then its chain.")
    key: str = Field(description="PEM file: the certificate's private key.")
    # RFC 8996 deprecates TLS 1.0 and 1.1; RFC 9325 asks for 1.2 at least, 1.3 preferred.
    min_version: Literal["1.2", "1.3"] = Field(default="1.2", description="Oldest TLS version accepted.")
    client_certificates: Literal["none", "optional", "required"] = Field(
        default="none",
        description="Ask clients for a certificate chaining to client_ca: 'required' refuses the "
        "handshake without one, 'optional' refuses only a bad one.",
    )
    client_ca: str | None = Field(default=None, description="PEM file: the CAs client certificates chain to.")
    watch_seconds: float = Field(
        default=30,
        ge=0,
        le=86_400,
        description="How often the certificate and key files are checked for a change (0: only on SIGHUP).",
    )

    @model_validator(mode="after")
    def _client_ca_when_asked(self) -> ServerTlsConfig:
        if self.client_certificates != "none" and self.client_ca is None:
            raise ValueError("client_certificates needs client_ca: the CAs client certificates chain to")
        if self.client_certificates == "none" and self.client_ca is not None:
            raise ValueError("client_ca is only used with client_certificates 'optional' or 'required'")
        return self


class UpstreamTlsConfig(BaseModel):
    """TLS to one upstream (upstream/tls.py): whom to trust, and the gateway's own certificate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_bundle: str | None = Field(
        default=None,
        description="PEM file of the CAs the upstream's certificate must chain to (default: the system's).",
    )
    client_certificate: str | None = Field(
        default=None, description="PEM file: the gateway's client certificate for this upstream (mutual TLS)."
    )
    client_key: str | None = Field(default=None, description="PEM file: that certificate's private key.")

    @model_validator(mode="after")
    def _certificate_and_key(self) -> UpstreamTlsConfig:
        if (self.client_certificate is None) != (self.client_key is None):
            raise ValueError("client_certificate and client_key go together")
        return self


def check_tls_files(config: BastionConfig, source: str = "") -> None:
    """Every certificate, key and CA file the config names can be used, as `serve` will use it
    (read at load, like the secrets: a bad file fails before listening, or a reload)."""
    from ..server.tls import server_context
    from ..upstream.tls import client_context

    listen_tls = config.listen.tls
    try:
        if listen_tls is not None:
            where = "listen.tls"
            server_context(listen_tls)
        for i, server in enumerate(config.servers):
            if server.upstream_tls is not None:
                where = f"servers[{i}].upstream_tls"
                client_context(server.upstream_tls)
    except OSError as exc:  # ssl.SSLError is one
        raise ConfigError(
            f"cannot use the TLS files: {_describe(exc)}",
            source=source,
            path=where,
            hint="PEM files: the certificate chain, its private key (unencrypted), the CA bundle",
        ) from None


def _describe(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    return f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc.strerror or exc)
