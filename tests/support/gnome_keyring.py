"""A real OS keyring for tests: GNOME Keyring's Secret Service on a private D-Bus session bus.

``running_gnome_keyring(folder)`` starts ``dbus-daemon --session`` on a socket in
``folder``, then ``gnome-keyring-daemon --foreground --unlock --components=secrets`` on that
bus with its home, runtime and data folders in ``folder`` (its login keyring is created
there, unlocked with a throwaway password), and yields the environment a process needs to
reach it. Ready means the daemon owns ``org.freedesktop.secrets`` on the bus: the
NameOwnerChanged signal is awaited, under a timeout. Both daemons come from Debian
(scripts/install-apt-tools installs them); the user's own session bus is never touched.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from jeepney import MatchRule, message_bus
from jeepney.io.blocking import open_dbus_connection

__all__ = ["running_gnome_keyring"]

READY_TIMEOUT_S = 20.0
SECRETS_NAME = "org.freedesktop.secrets"


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


@contextlib.contextmanager
def running_gnome_keyring(folder: Path) -> Iterator[dict[str, str]]:
    runtime = folder / "runtime"
    runtime.mkdir(mode=0o700)
    bus = subprocess.Popen(
        [
            "dbus-daemon",
            "--session",
            "--nofork",
            "--print-address=1",
            f"--address=unix:path={folder / 'bus'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # it complains that it may not raise its fd limit
    )
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().decode().strip()
        assert address.startswith("unix:"), "dbus-daemon printed no address"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DBUS_SESSION_BUS_ADDRESS": address,
            "HOME": str(folder),
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_DATA_HOME": str(folder / "data"),
            "XDG_CONFIG_HOME": str(folder / "config"),
        }
        with open_dbus_connection(bus=address) as connection:
            rule = MatchRule(
                type="signal",
                sender="org.freedesktop.DBus",
                interface="org.freedesktop.DBus",
                member="NameOwnerChanged",
                path="/org/freedesktop/DBus",
            )
            rule.add_arg_condition(0, SECRETS_NAME)
            connection.send_and_get_reply(message_bus.AddMatch(rule), timeout=READY_TIMEOUT_S)
            with connection.filter(rule) as signals:
                daemon = subprocess.Popen(
                    ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
                assert daemon.stdin is not None
                daemon.stdin.write(b"throwaway-test-password")  # the new login keyring's password
                daemon.stdin.close()
                try:
                    connection.recv_until_filtered(signals, timeout=READY_TIMEOUT_S)
                except BaseException:
                    _stop(daemon)
                    raise
        try:
            yield env
        finally:
            _stop(daemon)
    finally:
        _stop(bus)
