"""TLS termination (`mcp_bastion.server.tls`) with certificates made by `openssl` and Python's
`ssl` as the client, over loopback: versions and ciphers, client certificates, and certificate
reloads that leave established connections alone."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

from mcp_bastion.config.edge import ServerTlsConfig
from mcp_bastion.server import ConnectionLimits, HttpServer, bind
from mcp_bastion.server.tls import CertificateReloader, server_context

from ..support.certificates import Pem, make_ca, make_leaf
from . import RELAXED, WAIT_S, RawClient, TinyApp


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pem]:
    base = tmp_path_factory.mktemp("pki")
    ca, other_ca = make_ca(base / "ca"), make_ca(base / "other", "other-ca")
    return {
        "ca": ca,
        "server": make_leaf(ca, base, "server-1"),
        "renewed": make_leaf(ca, base, "server-2"),
        "client": make_leaf(ca, base, "client", client=True),
        "stranger": make_leaf(other_ca, base / "other", "stranger", client=True),
    }


class TlsClient(RawClient):
    def __init__(self, port: int, context: ssl.SSLContext, timeout: float = WAIT_S) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        self.timeout = timeout
        self.buffer = b""

    def peer_name(self) -> str:
        assert isinstance(self.sock, ssl.SSLSocket)
        cert = self.sock.getpeercert()
        assert cert is not None
        return dict(item[0] for item in cert["subject"])["commonName"]


def client_context(ca: Pem, *, cert: Pem | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.certificate))
    if cert is not None:
        context.load_cert_chain(str(cert.certificate), str(cert.key))
    return context


def _tls_config(tmp_path: Path, pki: dict[str, Pem], **options: object) -> ServerTlsConfig:
    # Copies the tests may overwrite (a renewal) without touching the module's fixtures.
    cert, key = tmp_path / "live.crt", tmp_path / "live.key"
    shutil.copy(pki["server"].certificate, cert)
    shutil.copy(pki["server"].key, key)
    return ServerTlsConfig(certificate=str(cert), key=str(key), **options)  # type: ignore[arg-type]


@contextlib.contextmanager
def serving_tls(
    tls: ServerTlsConfig, limits: ConnectionLimits = RELAXED
) -> Iterator[tuple[int, CertificateReloader]]:
    app = TinyApp()
    server = HttpServer(app, limits, grace=1.0)
    sock = bind("127.0.0.1", 0)
    reloader = CertificateReloader(server_context(tls), tls)
    failure: list[BaseException] = []

    async def run() -> None:
        reloader.start_watching()
        try:
            await server.serve(sock, tls=reloader.context)
        finally:
            reloader.stop_watching()

    def target() -> None:
        try:
            uvloop.run(run())
        except BaseException as exc:
            failure.append(exc)
            server.started.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert server.started.wait(WAIT_S)
    assert not failure, failure
    try:
        yield sock.getsockname()[1], reloader
    finally:
        server.stop()
        thread.join(WAIT_S)
        sock.close()
    assert not failure, failure


def _get(client: RawClient, path: str = "/") -> int:
    client.send(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return client.read_response().status


def test_a_tls_client_is_served_and_the_scope_says_https(tmp_path: Path, pki: dict[str, Pem]) -> None:
    with (
        serving_tls(_tls_config(tmp_path, pki)) as (port, _),
        TlsClient(port, client_context(pki["ca"])) as c,
    ):
        c.send(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = c.read_response()
        assert (answer.status, answer.body) == (200, b"GET /x\n")
        assert isinstance(c.sock, ssl.SSLSocket)
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert c.sock.selected_alpn_protocol() in (None, "http/1.1")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_12_and_13_are_accepted(tmp_path: Path, pki: dict[str, Pem], version: ssl.TLSVersion) -> None:
    context = client_context(pki["ca"])
    context.minimum_version = context.maximum_version = version
    with serving_tls(_tls_config(tmp_path, pki)) as (port, _), TlsClient(port, context) as c:
        assert _get(c) == 200


def _tls11_client(ca: Pem) -> ssl.SSLContext:
    context = client_context(ca)
    context.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # that is the point
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


def test_tls_11_is_refused(tmp_path: Path, pki: dict[str, Pem]) -> None:
    # RFC 8996: TLS 1.0 and 1.1 are deprecated. The client offers nothing newer.
    with serving_tls(_tls_config(tmp_path, pki)) as (port, _), pytest.raises(ssl.SSLError):
        TlsClient(port, _tls11_client(pki["ca"])).close()


def _permissive_handshake(pki: dict[str, Pem], client: ssl.SSLContext) -> tuple[str | None, str | None]:
    """The version and cipher `client` gets from a server that allows everything: shows the
    client really offers what a refusal test says the gateway refuses."""
    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    permissive.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        permissive.minimum_version = ssl.TLSVersion.TLSv1_1
    permissive.load_cert_chain(str(pki["server"].certificate), str(pki["server"].key))
    listener = bind("127.0.0.1", 0)

    def accept() -> None:
        conn, _ = listener.accept()
        conn.settimeout(WAIT_S)
        with contextlib.suppress(OSError), permissive.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    with listener, TlsClient(listener.getsockname()[1], client) as c:
        assert isinstance(c.sock, ssl.SSLSocket)
        found = c.sock.version(), (c.sock.cipher() or (None,))[0]
    thread.join(WAIT_S)
    return found


def test_control_that_client_does_speak_tls_11_to_a_server_that_allows_it(pki: dict[str, Pem]) -> None:
    assert _permissive_handshake(pki, _tls11_client(pki["ca"]))[0] == "TLSv1.1"


def test_min_version_13_refuses_tls_12(tmp_path: Path, pki: dict[str, Pem]) -> None:
    context = client_context(pki["ca"])
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with serving_tls(_tls_config(tmp_path, pki, min_version="1.3")) as (port, _), pytest.raises(ssl.SSLError):
        TlsClient(port, context).close()


CBC_SUITES = ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA256"]


def _tls12_client(ca: Pem, cipher: str) -> ssl.SSLContext:
    context = client_context(ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(f"{cipher}:@SECLEVEL=0")
    return context


@pytest.mark.parametrize("cipher", CBC_SUITES)
def test_tls_12_cbc_suites_are_refused(tmp_path: Path, pki: dict[str, Pem], cipher: str) -> None:
    # CBC suites: padding oracles (Lucky13); only AEAD suites with ECDHE are offered.
    with serving_tls(_tls_config(tmp_path, pki)) as (port, _), pytest.raises(ssl.SSLError):
        TlsClient(port, _tls12_client(pki["ca"], cipher)).close()


@pytest.mark.parametrize("cipher", CBC_SUITES)
def test_control_the_client_offers_each_refused_suite(pki: dict[str, Pem], cipher: str) -> None:
    assert _permissive_handshake(pki, _tls12_client(pki["ca"], cipher)) == ("TLSv1.2", cipher)


def test_control_an_ecdhe_aead_suite_on_tls_12_is_accepted(tmp_path: Path, pki: dict[str, Pem]) -> None:
    context = client_context(pki["ca"])
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with serving_tls(_tls_config(tmp_path, pki)) as (port, _), TlsClient(port, context) as c:
        assert _get(c) == 200


# --- client certificates ----------------------------------------------------------------------


def _mtls(tmp_path: Path, pki: dict[str, Pem], mode: str) -> ServerTlsConfig:
    return _tls_config(tmp_path, pki, client_certificates=mode, client_ca=str(pki["ca"].certificate))


def _refused(port: int, context: ssl.SSLContext) -> bool:
    """A handshake or the first exchange fails (TLS 1.3 reports a refused client certificate
    only once the client reads)."""
    try:
        with TlsClient(port, context) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            return c.sock.recv(1) == b""
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True


def test_required_client_certificates(tmp_path: Path, pki: dict[str, Pem]) -> None:
    with serving_tls(_mtls(tmp_path, pki, "required")) as (port, _):
        assert _refused(port, client_context(pki["ca"]))
        assert _refused(port, client_context(pki["ca"], cert=pki["stranger"]))
        with TlsClient(port, client_context(pki["ca"], cert=pki["client"])) as c:
            assert _get(c) == 200


def test_optional_client_certificates_refuse_only_a_bad_one(tmp_path: Path, pki: dict[str, Pem]) -> None:
    with serving_tls(_mtls(tmp_path, pki, "optional")) as (port, _):
        with TlsClient(port, client_context(pki["ca"])) as c:
            assert _get(c) == 200
        assert _refused(port, client_context(pki["ca"], cert=pki["stranger"]))
        with TlsClient(port, client_context(pki["ca"], cert=pki["client"])) as c:
            assert _get(c) == 200


# --- reloading the certificate ----------------------------------------------------------------


def _renew(tls: ServerTlsConfig, pem: Pem) -> None:
    shutil.copy(pem.certificate, tls.certificate)
    shutil.copy(pem.key, tls.key)


def test_a_reload_serves_the_new_certificate_and_keeps_established_connections(
    tmp_path: Path, pki: dict[str, Pem]
) -> None:
    tls = _tls_config(tmp_path, pki, watch_seconds=0)
    context = client_context(pki["ca"])
    with serving_tls(tls) as (port, reloader), TlsClient(port, context) as before:
        assert _get(before) == 200
        assert before.peer_name() == "server-1"
        _renew(tls, pki["renewed"])
        assert reloader.reload()
        with TlsClient(port, context) as after:
            assert after.peer_name() == "server-2"
            assert _get(after) == 200
        assert _get(before) == 200  # the connection established before the reload still works


def test_a_bad_certificate_is_refused_and_the_old_one_keeps_serving(
    tmp_path: Path, pki: dict[str, Pem], caplog: pytest.LogCaptureFixture
) -> None:
    tls = _tls_config(tmp_path, pki, watch_seconds=0)
    with serving_tls(tls) as (port, reloader):
        shutil.copy(pki["renewed"].certificate, tls.certificate)  # the key no longer matches
        with caplog.at_level(logging.ERROR, logger="mcp_bastion.server"):
            assert not reloader.reload()
        assert "still serving the previous one" in caplog.text
        Path(tls.key).write_text("not a key")
        assert not reloader.reload()
        with TlsClient(port, client_context(pki["ca"])) as c:
            assert c.peer_name() == "server-1"
            assert _get(c) == 200


def test_a_changed_file_is_picked_up_by_the_watch(tmp_path: Path, pki: dict[str, Pem]) -> None:
    tls = _tls_config(tmp_path, pki, watch_seconds=0.05)
    context = client_context(pki["ca"])
    with serving_tls(tls) as (port, reloader):
        _renew(tls, pki["renewed"])
        done = threading.Event()

        def renewed() -> bool:
            return reloader.reloads > 0

        assert _poll(renewed, done)
        with TlsClient(port, context) as c:
            assert c.peer_name() == "server-2"


def _poll(condition: object, done: threading.Event) -> bool:
    assert callable(condition)
    for _ in range(int(WAIT_S / 0.05)):
        if condition():
            return True
        done.wait(0.05)
    return bool(condition())


def test_a_stalled_handshake_is_closed_at_the_head_deadline(tmp_path: Path, pki: dict[str, Pem]) -> None:
    # Slowloris one layer down: a connection that never completes its handshake never
    # reaches the HTTP deadlines, so the handshake has the head deadline of its own.
    limits = ConnectionLimits(head_timeout=0.3, keep_alive_timeout=5.0)
    with serving_tls(_tls_config(tmp_path, pki), limits) as (port, _):
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as raw:
            raw.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, then nothing
            began = time.monotonic()
            with contextlib.suppress(ConnectionResetError):
                assert raw.recv(1024) == b""
            assert time.monotonic() - began < WAIT_S
