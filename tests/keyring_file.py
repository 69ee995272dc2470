"""A keyring backend for subprocess tests: entries in a JSON file named by GERI_TEST_KEYRING.

Selected with PYTHON_KEYRING_BACKEND=tests.keyring_file.FileKeyring, so the real `geri` CLI,
run as a subprocess, stores and reads keys through the keyring API as it would on a desktop.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from jaraco.classes import properties
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    @properties.classproperty
    def priority(cls) -> float:
        # viable only where a test selected it; merely importing this module (as doctest
        # collection does) must not put it in the keyring chain of the test process
        if not os.environ.get("GERI_TEST_KEYRING"):
            raise RuntimeError("GERI_TEST_KEYRING is not set")
        return 1

    @property
    def _path(self) -> Path:
        return Path(os.environ["GERI_TEST_KEYRING"])

    def _load(self) -> dict[str, str]:
        return json.loads(self._path.read_text()) if self._path.exists() else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        entries = self._load()
        entries[f"{service}/{username}"] = password
        self._path.write_text(json.dumps(entries))

    def delete_password(self, service: str, username: str) -> None:
        entries = self._load()
        if entries.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError(username)
        self._path.write_text(json.dumps(entries))
