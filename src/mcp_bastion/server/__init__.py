"""The gateway's HTTP/1.1 server: connections (`connection.py`) and running them (`runner.py`)."""

from .connection import ConnectionLimits, HttpConnection, RequestCycle
from .runner import HttpServer, ServedApp, bind, run_workers

__all__ = [
    "ConnectionLimits",
    "HttpConnection",
    "HttpServer",
    "RequestCycle",
    "ServedApp",
    "bind",
    "run_workers",
]
