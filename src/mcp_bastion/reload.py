"""Reloading the config on SIGHUP, without a restart and without dropping a request.

1. The file is loaded and checked exactly as `check-config` does (`load_config` with its
   secrets, then the pin lockfiles). Anything wrong: the reload is refused with one log line
   naming the file and the key, and the config already serving stays.
2. A new gateway is built from it and started (its key caches warm in the background).
3. New requests go to the new gateway; requests in flight finish on the one they started
   with, which is shut down (its connection pools closed) once the last of them has ended.

What a reload cannot change: where the process listens (`listen.host`, `listen.port`,
`listen.workers`: the socket is bound once, before the workers fork). A change there is
logged and ignored until a restart. Keys the config leaves to the process (no
`sessions.key`, no `signing.key`) are generated once per process and kept across reloads:
a reload must not invalidate every session id or every minted token.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Callable, Mapping

import orjson
from joserfc.jwk import ECKey, OKPKey, RSAKey

from .config import LoadedConfig, config_warnings, load_config
from .errors import BastionError
from .logs import redactor
from .server.connection import ConnectionLimits
from .server.drain import DrainPolicy
from .server.runner import HttpServer, ServedApp

__all__ = ["ConfigReloader", "with_process_keys"]

log = logging.getLogger("mcp_bastion")


class ConfigReloader:
    """Swaps the app `server` serves for one built from the config file, on request."""

    def __init__(
        self,
        server: HttpServer,
        loaded: LoadedConfig,
        build: Callable[[LoadedConfig], ServedApp],
        *,
        tune: Callable[[LoadedConfig], tuple[ConnectionLimits, DrainPolicy]] | None = None,
        listen_overrides: Mapping[str, object] | None = None,
    ) -> None:
        self._server = server
        self._loaded = loaded
        self._build = build
        self._tune = tune
        self._overrides = dict(listen_overrides or {})
        self._busy = False
        self._retiring: set[asyncio.Task[None]] = set()
        self.reloads = 0  # successful ones

    async def reload(self) -> bool:
        """Load, check and swap in the config file; False (and one log line) if refused."""
        path = self._loaded.path
        if path is None:
            log.error("reload refused: this config was not loaded from a file")
            return False
        if self._server.draining.is_set():
            log.warning("reload refused: the server is shutting down")
            return False
        if self._busy:
            log.warning("reload refused: a reload of %s is already under way", path)
            return False
        self._busy = True
        try:
            return await self._reload(path)
        finally:
            self._busy = False

    async def _reload(self, path: str) -> bool:
        try:
            loaded = _check(path, self._loaded)
            loaded = _keep_listen(loaded, self._loaded, self._overrides)
            app = self._build(loaded)
        except BastionError as err:
            hint = getattr(err, "hint", "")
            log.error(
                "reload refused, still serving the previous config: %s%s",
                err.message,
                f" ({hint})" if hint else "",
            )
            return False
        except Exception:
            # A bug, not a bad file: still never a half-applied config, and never a dead process.
            log.exception("reload refused, still serving the previous config: unexpected failure")
            return False
        await app.startup()
        for warning in config_warnings(loaded.config):
            log.warning("%s: %s", path, warning)
        limits, drain = self._tune(loaded) if self._tune is not None else (None, None)
        old, running = self._server.replace_app(app, limits, drain)
        self._loaded = loaded
        self.reloads += 1
        log.info(
            "reloaded %s: %d server(s); %d request(s) in flight finish on the previous config",
            path,
            len(loaded.config.servers),
            len(running),
        )
        retire = asyncio.ensure_future(_retire(old, running))
        self._retiring.add(retire)
        retire.add_done_callback(self._retiring.discard)
        return True

    async def close(self) -> None:
        """Shut down the apps still retiring (the server is stopping)."""
        for task in list(self._retiring):
            await task


def _check(path: str, previous: LoadedConfig) -> LoadedConfig:
    # The same checks as `check-config` (cli/_config.py), secrets and lockfiles included.
    from .pinning import check_lockfiles

    loaded = load_config(path)
    check_lockfiles(loaded.config, path)
    loaded = with_process_keys(loaded, previous.secrets)
    redactor.add_secrets(loaded.secrets.values())
    return loaded


def _keep_listen(
    loaded: LoadedConfig, previous: LoadedConfig, overrides: Mapping[str, object]
) -> LoadedConfig:
    """The new config with the listen address it cannot change (see the module docstring)."""
    old, new = previous.config.listen, loaded.config.listen
    wanted = new.model_copy(update=overrides)
    fixed = ("host", "port", "workers", "tls")
    if any(getattr(wanted, name) != getattr(old, name) for name in fixed):
        log.warning("%s: listen.host, .port, .workers and .tls take effect at the next restart", loaded.path)
    listen = new.model_copy(update={name: getattr(old, name) for name in fixed})
    config = loaded.config.model_copy(update={"listen": listen})
    return LoadedConfig(config, loaded.secrets, loaded.path)


async def _retire(old: ServedApp, running: set[asyncio.Task[None]]) -> None:
    if running:
        await asyncio.wait(running)
    await old.shutdown()


def with_process_keys(loaded: LoadedConfig, previous: Mapping[str, str] | None = None) -> LoadedConfig:
    """`loaded` with the keys it leaves to the process filled in: the ones in `previous` when
    they fit, else new random ones (what the gateway would generate itself)."""
    secrets = dict(loaded.secrets)
    kept = previous or {}
    if "sessions.key" not in secrets:
        secrets["sessions.key"] = kept.get("sessions.key") or base64.b64encode(os.urandom(32)).decode()
    if "signing.key" not in secrets:
        alg = loaded.config.signing.algorithm
        slot = f"signing.key:{alg}"  # an algorithm change needs a key of its own
        secrets[slot] = kept.get(slot) or _signing_jwk(alg)
        secrets["signing.key"] = secrets[slot]
    return LoadedConfig(loaded.config, secrets, loaded.path)


def _signing_jwk(alg: str) -> str:
    key: RSAKey | ECKey | OKPKey
    if alg == "ES256":
        key = ECKey.generate_key("P-256")
    elif alg == "EdDSA":
        key = OKPKey.generate_key("Ed25519")
    else:
        key = RSAKey.generate_key(2048)
    return orjson.dumps(key.as_dict(private=True)).decode()
