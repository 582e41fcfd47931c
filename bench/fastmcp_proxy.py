"""FastMCP's proxy with its JWTVerifier, as shipped: the Python peer in the comparison.

Runs in its own virtualenv (bench/.venv-fastmcp), because fastmcp may pin an `mcp`
version other than ours; it imports nothing from this repository.

    bench/.venv-fastmcp/bin/python bench/fastmcp_proxy.py --port P --upstream URL \
        --jwks-uri URL --issuer URL --audience URL
"""

from __future__ import annotations

import argparse

from fastmcp.server import create_proxy
from fastmcp.server.auth.providers.jwt import JWTVerifier


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the fixture's MCP endpoint")
    parser.add_argument("--jwks-uri", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--audience", required=True)
    args = parser.parse_args()
    auth = JWTVerifier(
        jwks_uri=args.jwks_uri,
        issuer=args.issuer,
        audience=args.audience,
        algorithm="ES256",
        base_url=f"http://127.0.0.1:{args.port}",
    )
    proxy = create_proxy(args.upstream, name="bench-proxy", auth=auth)
    # Defaults otherwise: stateful sessions, SSE responses, uvicorn with its default settings.
    proxy.run(transport="http", host="127.0.0.1", port=args.port, show_banner=False)


if __name__ == "__main__":
    main()
