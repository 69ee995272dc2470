"""`geri keys` as a user runs it, with a keyring, without one, and rotating against a server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.mockserver import MockServer, Reply

Geri = Callable[..., CompletedProcess[str]]
KEY = "sk-live-abcdefghijklmnop4321"


def test_set_list_remove(geri_cli: Geri, geri_home: Path) -> None:
    stored = geri_cli("keys", "set", "openai", stdin=KEY + "\n")
    assert stored.returncode == 0, stored.stderr
    assert KEY not in stored.stdout + stored.stderr
    keyring = json.loads((geri_home / "test-keyring.json").read_text())
    assert keyring == {"geri/openai": KEY}

    listed = geri_cli("keys", "list", "--json")
    rows = {r["provider"]: r for r in json.loads(listed.stdout)}
    assert rows["openai"] == {"provider": "openai", "source": "keyring", "key": "sk-…4321"}
    assert rows["anthropic"]["source"] is None
    table = geri_cli("keys", "list")
    assert "sk-…4321" in table.stdout
    assert KEY not in table.stdout

    assert geri_cli("keys", "remove", "openai").returncode == 0
    again = geri_cli("keys", "remove", "openai")
    assert again.returncode != 0
    assert "No key for openai" in again.stderr


def test_the_environment_takes_precedence(geri_cli: Geri) -> None:
    geri_cli("keys", "set", "anthropic", stdin=KEY)
    listed = geri_cli(
        "keys", "list", "--json", env={"ANTHROPIC_API_KEY": "sk-ant-env-00000000zzzz"}
    )
    row = next(r for r in json.loads(listed.stdout) if r["provider"] == "anthropic")
    assert row == {"provider": "anthropic", "source": "env:ANTHROPIC_API_KEY", "key": "sk-…zzzz"}


def test_the_key_is_never_an_argument(geri_cli: Geri) -> None:
    proc = geri_cli("keys", "set", "openai", KEY)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr


def test_no_keyring_backend_is_a_clear_message_not_a_hang(geri_cli: Geri) -> None:
    no_keyring = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    proc = geri_cli("keys", "set", "openai", stdin=KEY, env=no_keyring)
    assert proc.returncode == 1
    assert "No OS keyring is available" in proc.stderr
    assert "OPENAI_API_KEY" in proc.stderr
    assert "Traceback" not in proc.stderr
    listed = geri_cli("keys", "list", env=no_keyring)
    assert listed.returncode == 0
    assert "No OS keyring is available" in listed.stderr


def test_a_plaintext_keyring_is_refused_unless_allowed(geri_cli: Geri, geri_home: Path) -> None:
    plaintext = {
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "XDG_DATA_HOME": str(geri_home / "xdg"),
    }
    refused = geri_cli("keys", "set", "openai", stdin=KEY, env=plaintext)
    assert refused.returncode == 1
    assert "unencrypted" in refused.stderr
    settings = geri_home / "config" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"keys": {"allow_plaintext_keyring": True}}))
    assert geri_cli("keys", "set", "openai", stdin=KEY, env=plaintext).returncode == 0


@pytest.fixture
def openai_server(geri_home: Path) -> Iterator[MockServer]:
    with MockServer() as server:
        settings = geri_home / "config" / "settings.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps({"providers": {"openai": {"base_url": server.url + "/v1"}}}))
        yield server


def test_rotate_verify_keeps_the_old_key_when_the_new_one_is_refused(
    geri_cli: Geri, geri_home: Path, openai_server: MockServer
) -> None:
    geri_cli("keys", "set", "openai", stdin=KEY)
    openai_server.add(Reply(401, {"error": {"message": "Incorrect API key provided"}}))
    refused = geri_cli("keys", "rotate", "openai", "--verify", stdin="sk-wrong-000000000000000")
    assert refused.returncode == 1
    assert "refused" in refused.stderr
    assert json.loads((geri_home / "test-keyring.json").read_text())["geri/openai"] == KEY

    openai_server.add(Reply(json={"object": "list", "data": []}))
    new = "sk-new-key-9999999999999999"
    accepted = geri_cli("keys", "rotate", "openai", "--verify", stdin=new)
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads((geri_home / "test-keyring.json").read_text())["geri/openai"] == new
    assert openai_server.requests[-1].headers["authorization"] == f"Bearer {new}"
    assert openai_server.requests[-1].path == "/v1/models"
