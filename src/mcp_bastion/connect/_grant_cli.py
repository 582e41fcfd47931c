"""The ``connect --grant`` options: which grant, and the files its credentials are read from.

Secrets are never arguments (a command line is visible to every user in ``ps``): the
client secret, private key, assertion and ID token are each named by a file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._urls import require_web_url
from .grants import (
    SIGNING_ALGS,
    ClientAuth,
    ClientCredentialsGrant,
    Grant,
    IdJagGrant,
    JwtBearerGrant,
    load_signing_key,
    read_credential_file,
)

__all__ = ["add_grant_arguments", "grant_from_args"]

GRANTS = ("authorization_code", "client_credentials", "jwt_bearer", "id_jag")


def add_grant_arguments(connect: Any) -> None:
    connect.add_argument(
        "--grant",
        choices=GRANTS,
        default="authorization_code",
        help="how to obtain tokens: authorization_code (a browser login, the default), "
        "client_credentials (no user), jwt_bearer (an assertion the platform supplies), "
        "id_jag (enterprise-managed: the ID token exchanged at your IdP)",
    )
    connect.add_argument(
        "--private-key-file",
        metavar="FILE",
        help="client_credentials with private_key_jwt: the client's private key (PEM or JWK, mode 0600)",
    )
    connect.add_argument(
        "--signing-alg",
        choices=SIGNING_ALGS,
        help="the algorithm of --private-key-file (default: from the key: ES256, RS256, EdDSA)",
    )
    connect.add_argument(
        "--assertion-file",
        metavar="FILE",
        help="jwt_bearer: the JWT the platform issues the workload, read again at every grant",
    )
    connect.add_argument("--idp-issuer", metavar="URL", help="id_jag: your enterprise IdP's issuer")
    connect.add_argument("--idp-client-id", metavar="ID", help="id_jag: this client's id at the IdP")
    connect.add_argument(
        "--idp-client-secret-file", metavar="FILE", help="id_jag: this client's secret at the IdP"
    )
    connect.add_argument(
        "--id-token-file",
        metavar="FILE",
        help="id_jag: your ID token from the IdP's single sign-on, read again at every grant",
    )


_ONLY_FOR = {
    "private_key_file": ("--private-key-file", ("client_credentials",)),
    "signing_alg": ("--signing-alg", ("client_credentials",)),
    "assertion_file": ("--assertion-file", ("jwt_bearer",)),
    "idp_issuer": ("--idp-issuer", ("id_jag",)),
    "idp_client_id": ("--idp-client-id", ("id_jag",)),
    "idp_client_secret_file": ("--idp-client-secret-file", ("id_jag",)),
    "id_token_file": ("--id-token-file", ("id_jag",)),
}


def grant_from_args(args: argparse.Namespace, secret: str | None) -> Grant | None:
    """The grant the options ask for (None: the browser login); ConfigError for a wrong mix."""
    for attribute, (option, grants) in _ONLY_FOR.items():
        if getattr(args, attribute) is not None and args.grant not in grants:
            raise ConfigError(f"{option} is for --grant {' or '.join(grants)}")
    if args.grant == "authorization_code":
        return None
    if not args.client_id:
        raise ConfigError(f"--grant {args.grant} needs --client-id (a client registered in advance)")
    if args.grant == "client_credentials":
        return _client_credentials(args, secret)
    if args.grant == "jwt_bearer":
        if not args.assertion_file:
            raise ConfigError("--grant jwt_bearer needs --assertion-file")
        return JwtBearerGrant(ClientAuth(args.client_id, secret), Path(args.assertion_file))
    return _id_jag(args, secret)


def _client_credentials(args: argparse.Namespace, secret: str | None) -> Grant:
    if (secret is None) == (args.private_key_file is None):
        raise ConfigError(
            "--grant client_credentials needs exactly one of --client-secret-file and --private-key-file"
        )
    key = load_signing_key(Path(args.private_key_file), args.signing_alg) if args.private_key_file else None
    return ClientCredentialsGrant(ClientAuth(args.client_id, secret, key))


def _id_jag(args: argparse.Namespace, secret: str | None) -> Grant:
    missing = [
        option
        for option, value in (
            ("--idp-issuer", args.idp_issuer),
            ("--idp-client-id", args.idp_client_id),
            ("--id-token-file", args.id_token_file),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"--grant id_jag needs {', '.join(missing)}")
    require_web_url(args.idp_issuer, "--idp-issuer")
    idp_secret = None
    if args.idp_client_secret_file:
        idp_secret = read_credential_file(Path(args.idp_client_secret_file), "--idp-client-secret-file")
    return IdJagGrant(
        client=ClientAuth(args.client_id, secret),
        idp_issuer=args.idp_issuer,
        idp_client=ClientAuth(args.idp_client_id, idp_secret),
        id_token_file=Path(args.id_token_file),
    )
