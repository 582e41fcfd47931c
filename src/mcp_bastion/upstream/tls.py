"""TLS to upstreams: a client context per distinct `servers[].upstream_tls`.

Certificates are verified (chain and host name) against `ca_bundle`, or the system's CAs
without one; TLS 1.2 at least; the gateway presents `client_certificate` when one is set
(mutual TLS). Upstreams with equal settings share one context, and so their pooled
connections; different settings never share a connection (upstream/http11.py keys its pool
by context).
"""

from __future__ import annotations

import ssl

from ..config.edge import UpstreamTlsConfig

__all__ = ["UpstreamContexts", "client_context"]


def client_context(tls: UpstreamTlsConfig | None) -> ssl.SSLContext:
    """ssl.SSLError / OSError if a file cannot be used."""
    context = ssl.create_default_context(cafile=tls.ca_bundle if tls is not None else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls is not None and tls.client_certificate is not None:
        context.load_cert_chain(tls.client_certificate, tls.client_key)
    return context


class UpstreamContexts:
    """One context per distinct setting, built on first use (none for plain-http upstreams)."""

    def __init__(self) -> None:
        self._contexts: dict[UpstreamTlsConfig | None, ssl.SSLContext] = {}

    def __call__(self, tls: UpstreamTlsConfig | None) -> ssl.SSLContext:
        context = self._contexts.get(tls)
        if context is None:
            context = self._contexts[tls] = client_context(tls)
        return context
