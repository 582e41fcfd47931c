"""What every command of the CLI shares: the parser that reports usage mistakes in one line,
and the argument types."""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["FORMATTER", "Parser", "port_number", "worker_count"]

FORMATTER = argparse.RawDescriptionHelpFormatter


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and a hint, like every other error here."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n  hint: '{self.prog} --help' describes every option\n")


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, found {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, found {port}")
    return port


def worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of processes from 1 to 64, found {text!r}"
        ) from None
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of processes from 1 to 64, found {count}")
    return count
