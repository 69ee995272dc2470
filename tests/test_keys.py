"""The key store: environment precedence, the keyring, masking, and keyrings geri refuses."""

from __future__ import annotations

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from geri.errors import InputError, KeyringUnavailable, MissingKey
from geri.keys import KeyStore, mask, redact

ENV = {"openai": ("OPENAI_API_KEY",), "google": ("GOOGLE_API_KEY", "GEMINI_API_KEY")}


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.entries[(service, username)]


class PlaintextKeyring(MemoryKeyring):
    pass


PlaintextKeyring.__module__ = "keyrings.alt.file"


def store(
    environ: dict[str, str] | None = None, backend: object = None, allow_plaintext: bool = False
) -> KeyStore:
    return KeyStore(
        ENV, environ or {}, backend=backend or MemoryKeyring(), allow_plaintext=allow_plaintext
    )


def test_keys_are_stored_in_the_keyring_under_service_geri() -> None:
    backend = MemoryKeyring()
    keys = store(backend=backend)
    keys.set("openai", "  sk-abcdefghijklmnopqrstu\n")
    assert backend.entries == {("geri", "openai"): "sk-abcdefghijklmnopqrstu"}
    assert keys.get("openai") == "sk-abcdefghijklmnopqrstu"
    assert keys.remove("openai")
    assert not keys.remove("openai")
    assert keys.get("openai") is None


def test_environment_variables_win_geri_own_first() -> None:
    backend = MemoryKeyring()
    backend.set_password("geri", "google", "from-keyring-0000")
    keys = store({"GEMINI_API_KEY": "gemini-var-1111"}, backend)
    assert keys.get("google") == "gemini-var-1111"
    keys = store(
        {"GEMINI_API_KEY": "gemini-var-1111", "GOOGLE_API_KEY": "google-var-2222"}, backend
    )
    assert keys.get("google") == "google-var-2222"
    keys = store({"GOOGLE_API_KEY": "google-var-2222", "GERI_GOOGLE_API_KEY": "own-3333"}, backend)
    assert keys.get("google") == "own-3333"
    [google, _] = keys.status()
    assert (google.provider, google.source) == ("google", "env:GERI_GOOGLE_API_KEY")


def test_a_missing_key_says_how_to_add_one() -> None:
    with pytest.raises(MissingKey) as err:
        store().require("openai")
    assert str(err.value) == (
        "No key for 'openai' — run 'geri keys set openai' or set OPENAI_API_KEY."
    )


def test_status_masks_every_key() -> None:
    keys = store({"OPENAI_API_KEY": "sk-proj-abcdefghijklmnop9876"})
    [google, openai] = keys.status()
    assert openai.masked == "sk-…9876"
    assert google.source is None
    assert google.masked is None


def test_bad_keys_and_unknown_providers_are_refused() -> None:
    keys = store()
    with pytest.raises(InputError, match="empty"):
        keys.set("openai", "  \n")
    with pytest.raises(InputError, match="whitespace"):
        keys.set("openai", "sk-abc def")
    with pytest.raises(InputError, match="Unknown provider 'opneai'"):
        keys.set("opneai", "sk-x")


def test_no_keyring_backend_names_the_alternatives() -> None:
    keys = store(backend=fail.Keyring())
    with pytest.raises(KeyringUnavailable) as err:
        keys.set("openai", "sk-abcdefghijklmnop")
    message = str(err.value)
    assert "OPENAI_API_KEY" in message
    assert "gnome-keyring" in message
    assert "keyrings.alt" in message
    # reading still works from the environment, and quietly finds nothing otherwise
    assert keys.get("openai") is None
    assert store({"OPENAI_API_KEY": "k-1234"}, fail.Keyring()).get("openai") == "k-1234"
    assert keys.keyring_problem() == message


def test_a_plaintext_keyring_needs_an_explicit_opt_in() -> None:
    with pytest.raises(KeyringUnavailable, match="unencrypted"):
        store(backend=PlaintextKeyring()).set("openai", "sk-abcdefghijklmnop")
    allowed = store(backend=PlaintextKeyring(), allow_plaintext=True)
    allowed.set("openai", "sk-abcdefghijklmnop")
    assert allowed.get("openai") == "sk-abcdefghijklmnop"


def test_redact_replaces_secrets_with_their_mask() -> None:
    key = "sk-canary-0123456789abcdef"
    assert redact(f"Incorrect API key provided: {key}.", [key, None]) == (
        f"Incorrect API key provided: {mask(key)}."
    )
    assert key not in redact(key * 2, [key])


def test_keyring_reads_are_cached_briefly_and_writes_refresh_them() -> None:
    backend = MemoryKeyring()
    now = [0.0]
    keys = KeyStore(ENV, {}, backend=backend, clock=lambda: now[0])
    backend.set_password("geri", "openai", "sk-first-00000000000")
    assert keys.get("openai") == "sk-first-00000000000"
    backend.set_password("geri", "openai", "sk-other-process-1111")  # changed behind our back
    assert keys.get("openai") == "sk-first-00000000000"
    now[0] = 61.0
    assert keys.get("openai") == "sk-other-process-1111"
    keys.set("openai", "sk-mine-222222222222")
    assert keys.get("openai") == "sk-mine-222222222222"
