"""The IdP's signing key: generated or imported, checked against the algorithm, published.

RFC 8725 §3.1/§3.5: one algorithm per key, fixed by configuration, with a key of the
right type and strength; the key id is the RFC 7638 thumbprint.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

from ..errors import ConfigError
from ._policy import MIN_RSA_BITS

AnyKey = ECKey | RSAKey | OKPKey
_KEY_TYPES: Mapping[str, type[AnyKey]] = {"ES256": ECKey, "RS256": RSAKey, "PS256": RSAKey, "EdDSA": OKPKey}


@dataclass(frozen=True)
class SigningKey:
    """A private key, the one algorithm it signs with, and its key id."""

    key: AnyKey = field(repr=False)
    alg: str
    kid: str

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK with ``kid``, ``alg`` and ``use: sig``."""
        return {**self.key.as_dict(private=False), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: Mapping[str, Any], typ: str) -> str:
        """A compact JWS of ``claims`` with header ``alg``, ``typ`` and ``kid``."""
        header = {"alg": self.alg, "typ": typ, "kid": self.kid}
        with warnings.catch_warnings():
            # joserfc warns that RFC 9864 deprecates the name "EdDSA" (for "Ed25519"); it is
            # the name this IdP publishes and relying parties accept, so sign quietly.
            warnings.simplefilter("ignore", SecurityWarning)
            return jwt.encode(header, dict(claims), self.key, algorithms=[self.alg])


def load_signing_key(alg: str, key: Any | None = None) -> SigningKey:
    """Generate a key for ``alg``, or import ``key`` (a joserfc key, a cryptography private
    key or PEM) and check it suits ``alg``; a mismatch is a :class:`ConfigError`."""
    key_type = _KEY_TYPES.get(alg)
    if key_type is None:
        raise ConfigError(f"unsupported signing algorithm {alg!r}", source="devidp", path="signing_alg")
    jwk = _generate(alg) if key is None else _import(key_type, key)
    _check_strength(alg, jwk)
    return SigningKey(jwk, alg, jwk.thumbprint())


def _generate(alg: str) -> AnyKey:
    if alg == "ES256":
        return ECKey.generate_key("P-256")
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519")
    return RSAKey.generate_key(MIN_RSA_BITS)


def _import(key_type: type[AnyKey], key: Any) -> AnyKey:
    if isinstance(key, key_type):
        return key
    try:
        with warnings.catch_warnings():
            # joserfc only warns about a weak RSA key; _check_strength refuses it outright.
            warnings.simplefilter("ignore", SecurityWarning)
            return key_type.import_key(key)
    except (JoseError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"signing_key is not a private {key_type.__name__}", source="devidp", path="signing_key"
        ) from exc


def _check_strength(alg: str, key: AnyKey) -> None:
    problem = None
    if not key.is_private:
        problem = "signing_key must be a private key"
    elif isinstance(key, ECKey) and key.curve_name != "P-256":
        problem = "ES256 needs a P-256 key"
    elif isinstance(key, OKPKey) and key.curve_name != "Ed25519":
        problem = "EdDSA needs an Ed25519 key"
    elif isinstance(key, RSAKey) and key.raw_value.key_size < MIN_RSA_BITS:
        problem = f"RSA keys must have at least {MIN_RSA_BITS} bits"
    if problem is not None:
        raise ConfigError(problem, source="devidp", path="signing_key")
