"""API keys: the OS keyring, with environment variables taking precedence.

Keys are stored under the keyring service `geri`, one entry per provider name. An environment
variable wins over the keyring (`GERI_<PROVIDER>_API_KEY` first, then the provider's usual
variable, e.g. `OPENAI_API_KEY`), so CI and containers need no keyring at all.

A key is never logged, never put in an exception message, and never written anywhere but the
keyring: every key the store reads is handed to `geri.redaction`, which masks it in everything
geri prints, sends, stores or logs. On a machine without a
usable keyring (headless Linux) geri says so and names the alternatives instead of hanging; a
keyring that would store keys unencrypted on disk is refused unless the user opts in. Keyring
reads are remembered for a minute, so a busy daemon does not query the keyring per request.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from geri.errors import InputError, KeyringUnavailable, MissingKey
from geri.redaction import mask, redact, remember
from geri.settings import live

__all__ = ["KeyStatus", "KeyStore", "mask", "redact"]

SERVICE = "geri"
# a keyring read can be a D-Bus round trip: remember it briefly, so a rotated key is seen soon
CACHE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class KeyStatus:
    provider: str
    source: str | None  # "keyring", "env:NAME", or None when no key is set
    masked: str | None


class KeyStore:
    """Looks up, stores and removes API keys.

    `env_names` maps a provider to its usual environment variables; `backend` is a keyring
    backend object (tests pass an in-memory one; by default the OS keyring is found lazily).
    """

    def __init__(
        self,
        env_names: Mapping[str, tuple[str, ...]],
        environ: Mapping[str, str] | None = None,
        *,
        backend: Any = None,
        allow_plaintext: bool | Callable[[], bool] = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._env_names = env_names
        self._environ = os.environ if environ is None else environ
        self._backend = backend
        self._allow_plaintext = live(allow_plaintext)
        self._clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._all_variables = sorted({v for p in env_names for v in self.variables(p)})
        remember(*(self._environ.get(name) for name in self._all_variables))

    @property
    def providers(self) -> list[str]:
        return sorted(self._env_names)

    def known(self) -> list[str]:
        """Every key this store has seen: from the environment, and read from the keyring.

        The log redaction filter strips these from every record.
        """
        found = [value for name in self._all_variables if (value := self._environ.get(name))]
        keys = found + [key for _, key in self._cache.values() if key]
        remember(*keys)
        return keys

    def variables(self, provider: str) -> tuple[str, ...]:
        """Environment variables that hold `provider`'s key, in order of precedence."""
        own = f"GERI_{provider.upper().replace('.', '_').replace('-', '_')}_API_KEY"
        return (own, *self._env_names.get(provider, ()))

    def get(self, provider: str) -> str | None:
        """The key for `provider`, or None. Never raises for a missing keyring."""
        found = self._lookup(provider)
        return found[0] if found else None

    def require(self, provider: str) -> str:
        key = self.get(provider)
        if key is not None:
            return key
        raise MissingKey(f"No key for '{provider}' — {self.how_to_add(provider)}.")

    def how_to_add(self, provider: str) -> str:
        """How to give geri `provider`'s key, for messages: the environment variable always,
        `geri keys set` only where a keyring can hold it."""
        variable = self.variables(provider)[-1]
        if self.keyring_problem() is not None:
            return f"set {variable} (there is no keyring here for 'geri keys set')"
        return f"run 'geri keys set {provider}' or set {variable}"

    def status(self) -> list[KeyStatus]:
        rows = []
        for provider in self.providers:
            found = self._lookup(provider)
            rows.append(
                KeyStatus(provider, found[1], mask(found[0]))
                if found
                else KeyStatus(provider, None, None)
            )
        return rows

    def keyring_problem(self) -> str | None:
        """Why the OS keyring cannot be used, or None when it can."""
        try:
            self._usable_backend()
        except KeyringUnavailable as exc:
            return str(exc)
        return None

    def set(self, provider: str, key: str) -> None:
        self._check_provider(provider)
        key = key.strip()
        if not key:
            raise InputError("The key is empty; nothing was stored.")
        if any(c.isspace() for c in key):
            raise InputError("The key contains whitespace; paste it again, without spaces.")
        remember(key)
        self._call(lambda backend: backend.set_password(SERVICE, provider, key))
        self._cache.pop(provider, None)

    def remove(self, provider: str) -> bool:
        self._check_provider(provider)
        from keyring.errors import PasswordDeleteError

        backend = self._usable_backend()
        if backend.get_password(SERVICE, provider) is None:
            return False
        self._cache.pop(provider, None)
        try:
            self._call(lambda b: b.delete_password(SERVICE, provider))
        except PasswordDeleteError:
            return False
        return True

    def _lookup(self, provider: str) -> tuple[str, str] | None:
        for name in self.variables(provider):
            value = self._environ.get(name, "").strip()
            if value:
                remember(value)
                return value, f"env:{name}"
        cached = self._cache.get(provider)
        if cached is not None and self._clock() - cached[0] < CACHE_SECONDS:
            stored = cached[1]
        else:
            try:
                stored = self._call(lambda backend: backend.get_password(SERVICE, provider))
            except KeyringUnavailable:
                stored = None
            self._cache[provider] = (self._clock(), stored)
        remember(stored)
        return (stored, "keyring") if stored else None

    def _check_provider(self, provider: str) -> None:
        if provider not in self._env_names:
            known = ", ".join(self.providers)
            raise InputError(f"Unknown provider {provider!r}; providers with keys: {known}.")

    def _call(self, action: Any) -> Any:
        from keyring.errors import KeyringError

        backend = self._usable_backend()
        try:
            return action(backend)
        except KeyringError as exc:
            raise KeyringUnavailable(
                f"The OS keyring failed ({type(exc).__name__}: {exc}). Unlock it, or use an "
                "environment variable such as OPENAI_API_KEY instead."
            ) from exc

    def _usable_backend(self) -> Any:
        if self._backend is None:
            import keyring

            self._backend = keyring.get_keyring()
        backend = self._backend
        module = type(backend).__module__
        inner = getattr(backend, "backends", None)
        if module in {"keyring.backends.fail", "keyring.backends.null"} or inner == []:
            raise KeyringUnavailable(
                "No OS keyring is available on this machine. Either set the key in an "
                "environment variable (e.g. OPENAI_API_KEY or GERI_OPENAI_API_KEY), or run a "
                "Secret Service keyring (gnome-keyring, KWallet) and unlock it, or install "
                "keyrings.alt and set keys.allow_plaintext_keyring to true in the settings to "
                "accept an unencrypted key file."
            )
        if module.startswith("keyrings.alt") and not self._allow_plaintext():
            raise KeyringUnavailable(
                f"The keyring backend {type(backend).__name__} stores keys unencrypted on disk; "
                "geri refuses it unless keys.allow_plaintext_keyring is true in the settings. "
                "An environment variable such as OPENAI_API_KEY works too."
            )
        return backend
