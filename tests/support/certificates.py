"""Throwaway certificates made by the real `openssl` command: a CA, and leaf certificates it
signs for servers (127.0.0.1 / localhost) and clients."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pem:
    certificate: Path
    key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str = "test-ca") -> Pem:
    directory.mkdir(parents=True, exist_ok=True)
    pem = Pem(directory / f"{name}.crt", directory / f"{name}.key")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(pem.key), "-out", str(pem.certificate), "-days", "2",
        "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return pem


def make_leaf(ca: Pem, directory: Path, name: str, *, client: bool = False) -> Pem:
    """A certificate for `name` signed by `ca`: a server's for 127.0.0.1 and localhost, or a client's."""
    pem = Pem(directory / f"{name}.crt", directory / f"{name}.key")
    request = directory / f"{name}.csr"
    extensions = directory / f"{name}.ext"
    usage = "clientAuth" if client else "serverAuth"
    san = "" if client else "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    extensions.write_text(f"basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n{san}")
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(pem.key), "-out", str(request), "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca.certificate), "-CAkey", str(ca.key),
        "-CAcreateserial", "-out", str(pem.certificate), "-days", "2", "-extfile", str(extensions),
    )  # fmt: skip
    return pem
