"""What TLS termination costs per call: the same `mcp-bastion serve` in front of the fixture
upstream, plain HTTP and TLS (`listen.tls`, an ECDSA P-256 certificate made by `openssl`),
driven by wrk with the same stateless `tools/call`, in interleaved rounds.

Two cases: kept-alive connections (the steady state: record encryption only) and a new
connection per call (`Connection: close`: a full handshake each time, the worst case).
The cost per call is 1/rate(TLS) - 1/rate(plain), wall time at the concurrency used; on
this machine the gateway is CPU-bound, so it is CPU time per call. wrk shares the two cores
with what it measures: compare the two targets of one run, never numbers across runs.

    python -m bench.tls [--seconds 3] [--rounds 3] [--connections 16]

Writes bench/out/tls.json and prints a table (docs/operations.md has the latest).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

OUT = Path(__file__).resolve().parent / "out"
BODY = (
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":1},'
    '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    '"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},'
    '"io.modelcontextprotocol/clientCapabilities":{}}}}'
)
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/call",
    "Mcp-Name": "echo",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _certificate(directory: Path) -> tuple[Path, Path, Path]:
    ca_crt, ca_key = directory / "ca.crt", directory / "ca.key"
    crt, key, csr, ext = (directory / n for n in ("server.crt", "server.key", "server.csr", "server.ext"))
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "1", "-subj", "/CN=bench-ca",
             "-addext", "basicConstraints=critical,CA:TRUE")  # fmt: skip
    ext.write_text("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")  # fmt: skip
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(crt), "-days", "1", "-extfile", str(ext))  # fmt: skip
    return ca_crt, crt, key


@contextlib.contextmanager
def _process(command: list[str], ready: str, url: str, verify: str | bool = True) -> Iterator[None]:
    with tempfile.TemporaryFile() as log, subprocess.Popen(command, stdout=log, stderr=log) as process:
        yield from _running(process, log, command, ready, url, verify)


def _running(
    process: subprocess.Popen[bytes],
    log: IO[bytes],
    command: list[str],
    ready: str,
    url: str,
    verify: str | bool,
) -> Iterator[None]:
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(verify=verify, timeout=2) as http:
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"{command[2:4]} exited: {log.read().decode()[-2000:]}")
                try:
                    if http.get(url).status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{ready} did not start")
                time.sleep(0.1)  # polling a subprocess's port: there is no event to wait on
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _gateway(
    directory: Path, name: str, upstream: int, tls: tuple[Path, Path] | None
) -> tuple[list[str], int]:
    port = _free_port()
    scheme = "https" if tls else "http"
    lines = [
        f"public_base_url: {scheme}://127.0.0.1:{port}",
        "listen:",
        f"  port: {port}",
    ]
    if tls:
        lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
    lines += [
        "audit: {sink: none}",
        "servers:",
        f"  - {{name: bench, upstream: 'http://127.0.0.1:{upstream}/mcp', auth: false, upstream_auth: {{type: none}}}}",
    ]
    config = directory / f"{name}.yaml"
    config.write_text("\n".join(lines) + "\n")
    command = [
        sys.executable,
        "-m",
        "mcp_bastion.cli",
        "serve",
        "--config",
        str(config),
        "--log-level",
        "warning",
    ]
    return command, port


def _wrk(url: str, script: Path, seconds: float, connections: int, close: bool) -> float:
    duration = f"{max(1, round(seconds))}s"  # wrk takes whole seconds
    command = ["wrk", "-t", "1", "-c", str(connections), "-d", duration, "-s", str(script), url]
    if close:
        command[1:1] = ["-H", "Connection: close"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"wrk failed on {url}: {done.stdout}{done.stderr}")
    output = done.stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} failed answers from {url}:\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert rate is not None, output
    return float(rate.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ca, crt, key = _certificate(directory)
        script = directory / "call.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(BODY)}\n"
            + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in HEADERS.items())
        )
        upstream = _free_port()
        plain_cmd, plain_port = _gateway(directory, "plain", upstream, None)
        tls_cmd, tls_port = _gateway(directory, "tls", upstream, (crt, key))
        plain = f"http://127.0.0.1:{plain_port}/bench/mcp"
        secure = f"https://127.0.0.1:{tls_port}/bench/mcp"
        build = subprocess.run(
            [sys.executable, "-m", "mcp_bastion.cli", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        with (
            _process([sys.executable, "-m", "bench.upstream", "--port", str(upstream)], "upstream",
                     f"http://127.0.0.1:{upstream}/__stats"),
            _process(plain_cmd, "plain gateway", f"http://127.0.0.1:{plain_port}/healthz"),
            _process(tls_cmd, "TLS gateway", f"https://127.0.0.1:{tls_port}/healthz", verify=str(ca)),
        ):  # fmt: skip
            results: dict[str, dict[str, list[float]]] = {}
            for case, close in (("keep-alive", False), ("new connection per call", True)):
                rates: dict[str, list[float]] = {"plain": [], "tls": []}
                for _ in range(args.rounds):  # interleaved: drift on a shared machine hits both
                    rates["plain"].append(_wrk(plain, script, args.seconds, args.connections, close))
                    rates["tls"].append(_wrk(secure, script, args.seconds, args.connections, close))
                results[case] = rates
    report(results, args.connections, build)


def report(results: dict[str, dict[str, list[float]]], connections: int, build: str) -> None:
    rows = []
    for case, rates in results.items():
        plain, tls = max(rates["plain"]), max(rates["tls"])  # best round: least disturbed
        # Per call, at the machine's full load: wall time of the whole (CPU-bound) system.
        cost_us = (1 / tls - 1 / plain) * 1e6
        rows.append({"case": case, "plain_rps": plain, "tls_rps": tls, "tls_cost_us_per_call": cost_us,
                     "ratio": tls / plain, "rounds": rates})  # fmt: skip
    (OUT / "tls.json").write_text(
        json.dumps({"connections": connections, "build": build, "rows": rows}, indent=2)
    )
    print(build)
    print(f"| case (wrk -t1 -c{connections}) | plain req/s | TLS req/s | TLS/plain | TLS cost per call |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['case']} | {row['plain_rps']:.0f} | {row['tls_rps']:.0f} | {row['ratio']:.2f} "
            f"| {row['tls_cost_us_per_call']:.1f} µs |"
        )


if __name__ == "__main__":
    main()
