"""`mcp-bastion serve`: the production gateway from a config file."""

from __future__ import annotations

import argparse
from typing import Any

from ..config import CONFIG_REFERENCE_URL, load_config
from ..logs import LOG_LEVELS
from ._common import FORMATTER, port_number, worker_count

__all__ = ["COMMANDS", "add", "run"]

COMMANDS = ("serve",)

SERVE_DESCRIPTION = f"""Run the gateway from a YAML config file.

Before listening, serve runs every check check-config runs: the file's structure, its
cross-references, and the secrets it names (read from environment variables or files,
their contents checked). A config that fails stops serve with one line naming the file and
key; legal-but-risky settings are logged as warnings. Then it binds listen.host:listen.port
and serves until SIGINT (Ctrl-C) or SIGTERM; either stops it gracefully.

config reference: {CONFIG_REFERENCE_URL}
"""


def add(commands: Any) -> None:
    formatter = FORMATTER
    serve = commands.add_parser(
        "serve",
        help="run the gateway from a config file",
        description=SERVE_DESCRIPTION,
        formatter_class=formatter,
    )
    serve.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help="the YAML config file (required; 'mcp-bastion schema' prints its JSON Schema)",
    )
    serve.add_argument("--host", metavar="ADDRESS", help="address to bind (overrides listen.host)")
    serve.add_argument("--port", type=port_number, metavar="PORT", help="TCP port (overrides listen.port)")
    serve.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="text lines, or one JSON object a line"
    )
    serve.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="default: info")
    serve.add_argument(
        "--workers",
        type=worker_count,
        metavar="N",
        help="worker processes sharing the port, 1 to 64 (default: listen.workers from the config, itself 1)",
    )


def run(args: argparse.Namespace) -> int:
    from ..serving import serve

    serve(load_config(args.config), workers=args.workers, host=args.host, port=args.port)
    return 0
