"""Run panva's oidc-provider (a real third-party authorization server) for a test.

``start_oidc_provider`` starts ``server.mjs`` under Node 22 on an ephemeral loopback
port and yields an :class:`OidcProvider` describing it::

    with start_oidc_provider({"http://127.0.0.1:8000/mcp": ["mcp:read"]}) as idp:
        httpx.get(idp.metadata_url)

The provider keeps everything in memory: each start is a fresh issuer with a fresh key.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from tests.support.node import NODE_DIR, node_bin_dir, node_env

__all__ = [
    "OidcProvider",
    "OidcProviderStartError",
    "SigningAlg",
    "StaticClient",
    "start_oidc_provider",
]

SERVER_SCRIPT = Path(__file__).with_name("server.mjs")
# Node start-up, module loading and an RSA-2048 key generation take well under a second
# here; the margin is for a loaded 2-core CI machine.
STARTUP_TIMEOUT_S = 20.0
SHUTDOWN_TIMEOUT_S = 5.0

# "Ed25519" is RFC 9864's fully-specified name for what "EdDSA" means here.
SigningAlg = Literal["RS256", "ES256", "EdDSA", "Ed25519"]


@dataclass(frozen=True)
class StaticClient:
    """A pre-registered client; by default a confidential client_credentials service."""

    client_id: str
    client_secret: str | None = None
    grant_types: Sequence[str] = ("client_credentials",)
    # oidc-provider applies its client defaults to static clients too (RFC 7591 says
    # client_secret_basic), so the method is always sent explicitly.
    token_endpoint_auth_method: str = "client_secret_basic"
    redirect_uris: Sequence[str] = ()
    # More client metadata, as oidc-provider takes it (e.g. `jwks` for private_key_jwt).
    extra: Mapping[str, object] = field(default_factory=dict)

    def metadata(self) -> dict[str, object]:
        """The client as oidc-provider's ``clients`` configuration expects it."""
        data: dict[str, object] = {
            "client_id": self.client_id,
            "grant_types": list(self.grant_types),
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "redirect_uris": list(self.redirect_uris),
            # A client without the authorization_code grant must not keep the default
            # response_types ["code"], or oidc-provider rejects its metadata.
            "response_types": ["code"] if "authorization_code" in self.grant_types else [],
        }
        if self.client_secret is not None:
            data["client_secret"] = self.client_secret
        data.update(self.extra)
        return data


DEFAULT_CLIENTS = (StaticClient("bastion-test-service", "bastion-test-service-secret"),)


@dataclass(frozen=True)
class OidcProvider:
    """A running oidc-provider. Endpoint paths are oidc-provider's default routes."""

    issuer: str
    port: int
    alg: SigningAlg
    account: str
    resources: Mapping[str, tuple[str, ...]]
    clients: tuple[StaticClient, ...] = field(default=())

    @property
    def metadata_url(self) -> str:
        """RFC 8414 metadata; the same document is also at /.well-known/openid-configuration."""
        return f"{self.issuer}/.well-known/oauth-authorization-server"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/auth"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def registration_endpoint(self) -> str:
        return f"{self.issuer}/reg"

    @property
    def introspection_endpoint(self) -> str:
        return f"{self.issuer}/token/introspection"

    @property
    def revocation_endpoint(self) -> str:
        return f"{self.issuer}/token/revocation"

    def client(self, client_id: str | None = None) -> StaticClient:
        """A static client by id (the first one when no id is given)."""
        for candidate in self.clients:
            if client_id is None or candidate.client_id == client_id:
                return candidate
        raise KeyError(client_id)


class OidcProviderStartError(RuntimeError):
    """The provider exited or stayed silent during start-up; the message carries its stderr."""


@contextlib.contextmanager
def start_oidc_provider(
    resources: Mapping[str, Sequence[str]],
    *,
    alg: SigningAlg = "ES256",
    clients: Sequence[StaticClient] = DEFAULT_CLIENTS,
    account: str = "alice",
    access_token_ttl: int = 3600,
    extra_config: Mapping[str, object] | None = None,
    registration: bool = True,
) -> Iterator[OidcProvider]:
    """Run oidc-provider until the block exits.

    ``resources`` maps each resource indicator (RFC 8707) to the scopes it accepts; access
    tokens requested for one are JWTs (RFC 9068) with ``aud`` = that resource. Every
    login and consent is approved as ``account`` without a browser. ``registration=False``
    turns Dynamic Client Registration off (an IdP like Entra ID, for the facade's tests).
    """
    frozen = {url: tuple(scopes) for url, scopes in resources.items()}
    config = {
        # Port 0: the server binds first and reports the port it got, so there is no
        # window in which another process can take a port we probed as free.
        "port": 0,
        "host": "127.0.0.1",
        "resources": {url: " ".join(scopes) for url, scopes in frozen.items()},
        "alg": alg,
        "clients": [client.metadata() for client in clients],
        "auto_approve_account": account,
        "access_token_ttl": access_token_ttl,
        **(extra_config or {}),  # server.mjs keys such as opaque_resources, extension
        "registration": registration,
    }
    node = node_bin_dir() / "node"  # may run npm install once: kept out of the start-up timeout
    with tempfile.TemporaryDirectory(prefix="oidc-provider-") as scratch:
        config_path = Path(scratch, "config.json")
        config_path.write_text(json.dumps(config), encoding="utf-8")
        # stderr goes to a file, not a pipe nobody reads: a chatty provider must never
        # block on a full pipe, and the file is there to quote if start-up fails.
        stderr_path = Path(scratch, "stderr.log")
        with stderr_path.open("wb") as stderr, _spawn(node, config_path, stderr) as issuer:
            yield OidcProvider(
                issuer=issuer,
                port=int(issuer.rsplit(":", 1)[1]),
                alg=alg,
                account=account,
                resources=frozen,
                clients=tuple(clients),
            )


class _ReadyLine:
    """Reads the child's stdout on a thread: a pipe read has no timeout of its own.

    The first line is the READY line (or "" at EOF, when the process died first); the
    rest is drained so the child can never block on a full pipe.
    """

    def __init__(self, stdout: IO[str]) -> None:
        self.line = ""
        self.arrived = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(stdout,), daemon=True)
        self._thread.start()

    def _read(self, stdout: IO[str]) -> None:
        self.line = stdout.readline()
        self.arrived.set()
        for _ in stdout:
            pass

    def join(self) -> None:
        self._thread.join(SHUTDOWN_TIMEOUT_S)


@contextlib.contextmanager
def _spawn(node: Path, config_path: Path, stderr: IO[bytes]) -> Iterator[str]:
    """Start the provider, wait for READY and yield the issuer; stop and reap it on exit."""
    process = subprocess.Popen(
        [str(node), str(SERVER_SCRIPT), str(config_path)],
        cwd=NODE_DIR,
        env=node_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    assert process.stdout is not None
    ready = _ReadyLine(process.stdout)
    try:
        yield _wait_ready(process, ready, Path(stderr.name))
    finally:
        process.terminate()
        try:
            process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        ready.join()
        process.stdout.close()


def _wait_ready(process: subprocess.Popen[str], ready: _ReadyLine, stderr_path: Path) -> str:
    if not ready.arrived.wait(STARTUP_TIMEOUT_S):
        raise OidcProviderStartError(_failure("did not print READY in time", stderr_path))
    line = ready.line.strip()
    if not line.startswith("READY "):
        # EOF on stdout: the process is exiting; its code says how.
        try:
            code: int | None = process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        raise OidcProviderStartError(_failure(f"exited with code {code} ({line!r})", stderr_path))
    return line.removeprefix("READY ")


def _failure(what: str, stderr_path: Path) -> str:
    stderr = stderr_path.read_text(encoding="utf-8", errors="replace").strip()
    return f"oidc-provider ({SERVER_SCRIPT.name}) {what}; its stderr:\n{stderr or '(empty)'}"
