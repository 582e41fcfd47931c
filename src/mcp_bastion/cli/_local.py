"""`mcp-bastion demo` and `mcp-bastion wrap`: everything on one machine, with the development
IdP (the `[demo]` extra)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ..config import load_config
from ..errors import ConfigError
from ._common import FORMATTER, port_number

__all__ = ["COMMANDS", "add", "run"]

COMMANDS = ("demo", "wrap")

DEMO_DESCRIPTION = """Run everything on one machine to try mcp-bastion: a development OAuth IdP, two
sample MCP servers and the gateway protecting them. The gateway and the IdP share one
port; the sample servers listen on free loopback ports. The URLs and a client
configuration to paste are printed once it is ready. Ctrl-C stops everything.

The development IdP approves any user name: never expose it (hence --allow-remote).
"""

WRAP_DESCRIPTION = """Put one stdio MCP server (a plug-in) behind the whole gateway, on loopback.

The command after -- is run without a shell, one process per signed-in user by default
(--process shared: one for everyone), at http://HOST:PORT/NAME/mcp. Without --config, the
development IdP shares the port, as in the demo (never expose it: it approves any user
name); with --config FILE, the plug-in is added to that serve config and its IdPs are
trusted instead. Every request the plug-in receives carries the caller's identity as a
token the gateway signs, in _meta["io.github.mcp-bastion/identity"] (docs/stdio.md).

The plug-in's environment is only PATH, HOME, LANG, TMPDIR and each --env NAME.
"""


def add(commands: Any) -> None:
    _add_demo(commands)
    _add_wrap(commands)


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the development IdP, two sample MCP servers and the gateway",
        description=DEMO_DESCRIPTION,
        formatter_class=FORMATTER,
    )
    demo.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)"
    )
    demo.add_argument(
        "--port",
        type=port_number,
        default=8000,
        help="port for the gateway and the IdP, 0 to 65535; 0 picks a free port, printed at start (default: 8000)",
    )
    demo.add_argument(
        "--auto-approve",
        metavar="USER",
        help="approve every login at once as USER, with no consent page (for scripts)",
    )
    demo.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (the development IdP approves anyone: not for real use)",
    )
    demo.add_argument(
        "--serve-config",
        metavar="FILE",
        help="a `serve` config to run beside the demo (examples/dev.yaml): the dev IdP also issues "
        "tokens for its servers, and its loopback upstreams named demo and notes are the samples",
    )
    demo.add_argument(
        "--exchange",
        action="store_true",
        help="add a third server, whoami, that the gateway reaches with RFC 8693 token exchange at "
        "the development IdP; its tool whoami shows the sub, aud and act of the token it received",
    )


def _add_wrap(commands: Any) -> None:
    wrap = commands.add_parser(
        "wrap",
        help="put a stdio MCP server behind the gateway (with the development IdP, or --config)",
        description=WRAP_DESCRIPTION,
        formatter_class=FORMATTER,
    )
    wrap.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)"
    )
    wrap.add_argument(
        "--port", type=port_number, default=8000, help="port, 0 to 65535; 0 picks a free port (default: 8000)"
    )
    wrap.add_argument("--name", default="local", help="the server's path segment (default: local)")
    wrap.add_argument("--auto-approve", metavar="USER", help="approve every login at once as USER (dev IdP)")
    wrap.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback --host with the development IdP"
    )
    wrap.add_argument("--config", metavar="FILE", help="a serve config whose IdPs to trust (no dev IdP)")
    wrap.add_argument(
        "--process",
        choices=("per_subject", "shared"),
        default="per_subject",
        help="one process per user (default) or one shared by everyone",
    )
    wrap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass this variable to the plug-in (repeatable)",
    )
    wrap.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS", help="the stdio server to run")


def run(args: argparse.Namespace) -> int:
    return _demo(args) if args.command == "demo" else _wrap(args)


def _demo(args: argparse.Namespace) -> int:
    try:
        from ..demo.stack import DemoOptions, render_announcement, run_demo
    except ModuleNotFoundError as exc:
        # A production install leaves out the demo's web stack (the `[demo]` extra).
        raise ConfigError(
            f"the demo needs the [demo] extra ({exc.name} is not installed)",
            hint="pip install 'mcp-bastion[demo]'",
        ) from None

    companion = load_config(args.serve_config, read_secrets=False).config if args.serve_config else None
    options = DemoOptions(
        args.host, args.port, args.auto_approve, args.allow_remote, companion, exchange=args.exchange
    )

    def announce(stack: object) -> None:
        print(render_announcement(stack, args.auto_approve), flush=True)  # type: ignore[arg-type]

    asyncio.run(run_demo(options, announce))
    return 0


def _wrap(args: argparse.Namespace) -> int:
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        raise ConfigError(
            "no command to wrap", hint="mcp-bastion wrap -- npx -y @modelcontextprotocol/server-everything"
        )
    try:
        from ..stdio.wrap import WrapOptions, WrapStack, render_wrap, run_wrap, wrap_config
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"wrap needs the [demo] extra ({exc.name} is not installed)",
            hint="pip install 'mcp-bastion[demo]'",
        ) from None
    options = WrapOptions(
        tuple(command),
        args.name,
        args.host,
        args.port,
        args.auto_approve,
        args.allow_remote,
        args.process,
        tuple(args.env),
    )
    if args.config is not None:
        from ..serving import serve

        loaded = wrap_config(load_config(args.config), options)
        base = loaded.config.public_base_url
        print(
            render_wrap(WrapStack(base, None, options.name, loaded.config, None), command, None), flush=True
        )
        serve(loaded)
        return 0

    def announce(stack: WrapStack) -> None:
        print(render_wrap(stack, command, args.auto_approve), flush=True)

    asyncio.run(run_wrap(options, announce))
    return 0
