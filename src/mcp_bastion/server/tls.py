"""TLS termination on the listener: one context, its certificate reloaded in place.

- **Versions and ciphers.** TLS 1.2 at least (RFC 8996, RFC 9325); for 1.2 only ECDHE key
  exchange with AEAD ciphers (forward secrecy, no CBC, no RSA key transport); TLS 1.3's
  suites are all AEAD. No compression (CRIME), no renegotiation, server cipher preference.
  ALPN offers `http/1.1` only: the server speaks nothing else.
- **Client certificates** (optional): verified against `client_ca`; `required` refuses the
  handshake without one, `optional` refuses only a certificate that does not verify.
- **Reload without dropping connections.** The certificate and key are loaded again into
  the same context: handshakes from then on present the new certificate, connections
  already established keep theirs. New files are first loaded into a scratch context, so a
  bad pair (unreadable, mismatched key) is refused with a log line and the old one serves
  on. Triggers: SIGHUP, and a change of either file seen by a check every `watch_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl

from ..config.edge import ServerTlsConfig

__all__ = ["CertificateReloader", "server_context"]

log = logging.getLogger("mcp_bastion.server")
# TLS 1.2: ECDHE with AES-GCM or ChaCha20-Poly1305 only (Mozilla's "intermediate" list).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS"
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_CLIENT_CERTS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def server_context(tls: ServerTlsConfig) -> ssl.SSLContext:
    """A server context for `tls`; ssl.SSLError / OSError if a file cannot be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[tls.min_version]
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(tls.certificate, tls.key)
    if tls.client_ca is not None:
        context.load_verify_locations(cafile=tls.client_ca)
    context.verify_mode = _CLIENT_CERTS[tls.client_certificates]
    return context


class CertificateReloader:
    """Keeps `context` presenting what the certificate and key files hold now."""

    def __init__(self, context: ssl.SSLContext, tls: ServerTlsConfig) -> None:
        self.context = context
        self._tls = tls
        self._stamp = self._files_stamp()
        self._watcher: asyncio.Task[None] | None = None
        self.reloads = 0

    def reload(self) -> bool:
        """Load the files again; False (and a log line) if they cannot be used."""
        tls = self._tls
        stamp = self._files_stamp()
        try:
            server_context(tls)  # a scratch load first: a bad pair never reaches the live context
            self.context.load_cert_chain(tls.certificate, tls.key)
        except (ssl.SSLError, OSError) as exc:
            log.error("TLS certificate not reloaded, still serving the previous one: %s", _reason(exc))
            self._stamp = stamp  # reported once per change, not once per check
            return False
        self._stamp = stamp
        self.reloads += 1
        log.info("TLS certificate reloaded from %s", tls.certificate)
        return True

    def start_watching(self) -> None:
        if self._tls.watch_seconds > 0 and self._watcher is None:
            self._watcher = asyncio.ensure_future(self._watch(self._tls.watch_seconds))

    def stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    async def _watch(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            if self._files_stamp() != self._stamp:
                self.reload()

    def _files_stamp(self) -> tuple[tuple[int, int, int], ...]:
        stamps = []
        for path in (self._tls.certificate, self._tls.key):
            try:
                info = os.stat(path)
            except OSError:
                stamps.append((0, 0, 0))
                continue
            stamps.append((info.st_mtime_ns, info.st_size, info.st_ino))
        return tuple(stamps)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, ssl.SSLError):
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(getattr(exc, "reason", None) or exc)
