"""The gateway's HTTP/1.1 server: connections (`connection.py`), one request over one
(`cycle.py`), the bytes of response heads (`wire.py`) and running it all (`runner.py`)."""

from .connection import ConnectionLimits, HttpConnection
from .cycle import RequestCycle
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
