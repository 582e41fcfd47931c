"""The token store in the OS keyring, and the choice between it and the 0600 file.

``--token-store keyring`` keeps each (issuer, resource) entry (tokens, client
registration, DPoP key) as one secret of the ``keyring`` package's backend: the Secret
Service (GNOME Keyring, KWallet) on Linux, the Keychain on macOS, the Credential Locker on
Windows. ``auto`` (the default) uses it when one of those OS keyrings is there and usable,
and otherwise says so on stderr and uses the file.

Refused, in every mode: the ``fail`` and ``null`` backends (nothing is stored) and every
backend of ``keyrings.alt``, whose "file" keyrings are plaintext (or encrypted with a
password read from the terminal, which here is the MCP channel). ``auto`` accepts only the
OS keyrings above; ``keyring`` also accepts another backend the user configured on purpose
(``PYTHON_KEYRING_BACKEND`` or ``keyringrc.cfg``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ._errors import ConnectError
from .tokens import EntryStore, TokenStore, TokenStoreProtocol

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

__all__ = ["STORE_MODES", "KeyringTokenStore", "keyring_backend", "open_store"]

log = logging.getLogger(__name__)

STORE_MODES: Final = ("auto", "keyring", "file")
SERVICE: Final = "mcp-bastion connect"
# The backends that are an operating system's own secret store.
OS_KEYRINGS: Final = frozenset(
    {
        "keyring.backends.SecretService",
        "keyring.backends.libsecret",
        "keyring.backends.kwallet",
        "keyring.backends.macOS",
        "keyring.backends.Windows",
    }
)
NEVER: Final = ("keyring.backends.fail", "keyring.backends.null", "keyring.backends.chainer", "keyrings.alt")
MAX_ENTRY_BYTES: Final = 256 * 1024


class KeyringTokenStore(EntryStore):
    """The entries as secrets of one keyring backend, one secret per (issuer, resource)."""

    def __init__(self, backend: KeyringBackend, service: str = SERVICE) -> None:
        self.backend = backend
        self.service = service

    def _load(self, key: str) -> dict[str, Any]:
        from keyring.errors import KeyringError

        try:
            text = self.backend.get_password(self.service, key)
        except KeyringError as exc:
            raise ConnectError(f"cannot read the OS keyring: {type(exc).__name__}") from None
        if text is None:
            return {}
        try:
            entry = json.loads(text) if len(text) <= MAX_ENTRY_BYTES else None
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            log.warning("the keyring entry of %s is damaged; starting afresh", self.service)
            return {}
        return entry

    def _store(self, key: str, entry: dict[str, Any]) -> None:
        from keyring.errors import KeyringError

        try:
            self.backend.set_password(self.service, key, json.dumps(entry, separators=(",", ":")))
        except KeyringError as exc:
            raise ConnectError(f"cannot write to the OS keyring: {type(exc).__name__}") from None


def _name(backend: object) -> str:
    kind = type(backend)
    return f"{kind.__module__}.{kind.__qualname__}"


def keyring_backend(*, os_only: bool) -> tuple[KeyringBackend | None, str]:
    """The configured keyring backend we accept, or None; and a phrase naming it or why not."""
    try:
        import keyring
        from keyring.backends.chainer import ChainerBackend
    except ImportError:
        return None, "the keyring package is not installed (pip install 'mcp-bastion[keyring]')"
    try:
        backend = keyring.get_keyring()
        if isinstance(backend, ChainerBackend):
            # The chain writes to the first backend that takes it: that one is the store.
            chained = list(backend.backends)
            backend = chained[0] if chained else backend
    except Exception as exc:  # a backend's own probing can fail any way (D-Bus, OS APIs)
        return None, f"no keyring backend could be loaded ({type(exc).__name__})"
    name = _name(backend)
    module = type(backend).__module__
    if module.startswith(NEVER):
        return None, f"the keyring backend {name} is not a safe secret store"
    if os_only and module not in OS_KEYRINGS:
        return None, f"the keyring backend {name} is not an OS keyring (choose it with --token-store keyring)"
    return backend, name


def open_store(mode: str, path: Path) -> TokenStoreProtocol:
    """The token store ``mode`` (one of :data:`STORE_MODES`) names, the file being at ``path``."""
    if mode == "file":
        return TokenStore(path)
    backend, name = keyring_backend(os_only=mode == "auto")
    if backend is not None:
        log.info("tokens are kept in the OS keyring (%s)", name)
        return KeyringTokenStore(backend)
    if mode == "keyring":
        raise ConnectError(f"--token-store keyring: {name}")
    log.info("tokens are kept in the 0600 file %s: %s", path, name)
    return TokenStore(path)
