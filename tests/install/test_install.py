"""`geri install` against a hub stand-in on 127.0.0.1 serving the real test model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from geri.errors import InstallError
from geri.install import install, plan
from geri.install.catalog import entry
from geri.install.hardware import Hardware
from geri.registry import ModelRegistry
from geri.settings import Settings
from geri.store import open_store
from tests.conftest import run_geri
from tests.hubserver import HubFile, HubServer

Geri = Callable[..., CompletedProcess[str]]
TINY = entry("tiny")
assert TINY.size is not None
TINY_SIZE: int = TINY.size  # pinned in the catalog


@pytest.fixture
def hub(smollm_path: Path) -> Iterator[HubServer]:
    with HubServer() as server:
        server.files[(TINY.repo, TINY.file)] = HubFile(smollm_path.read_bytes())
        yield server


@pytest.fixture
def geri(geri_cli: Geri, hub: HubServer) -> Geri:
    def run(*args: str, env: dict[str, str] | None = None) -> CompletedProcess[str]:
        return geri_cli(*args, env={"HF_ENDPOINT": hub.url, **(env or {})})

    return run


def destination(home: Path) -> Path:
    return home / "data" / "models" / TINY.repo.replace("/", "--") / TINY.file


def test_a_full_install_registers_a_verified_default_model(
    geri: Geri, hub: HubServer, geri_home: Path, smollm_path: Path
) -> None:
    proc = geri("install", "tiny")
    assert proc.returncode == 0, proc.stderr
    assert "Installed tiny" in proc.stdout
    assert "Downloading" in proc.stderr  # the progress bar
    path = destination(geri_home)
    assert path.read_bytes() == smollm_path.read_bytes()
    assert not path.with_name(path.name + ".part").exists()
    [listed] = [
        m for m in json.loads(geri("models", "list", "--json").stdout) if m["location"] == "local"
    ]
    assert (listed["id"], listed["default"]) == ("tiny", True)
    assert listed["metadata"]["sha256"] == TINY.sha256
    assert listed["metadata"]["revision"] == "0123456789abcdef0123456789abcdef01234567"
    asked = geri("ask", "Say hi.", "--max-tokens", "4", "--json")
    assert json.loads(asked.stdout)["model"] == "tiny"
    again = geri("install", "tiny")
    assert again.returncode == 0
    assert "already installed" in again.stdout
    assert len(hub.gets(TINY.file)) == 1  # the second run downloaded nothing


def test_a_cut_transfer_resumes_without_fetching_the_start_again(
    geri: Geri, hub: HubServer, geri_home: Path
) -> None:
    hub.cut_at = 0.6
    first = geri("install", "tiny")
    assert first.returncode == 1
    assert "resumes where it stopped" in first.stderr
    assert "Traceback" not in first.stderr
    part = destination(geri_home).with_name(TINY.file + ".part")
    cut = int(TINY_SIZE * 0.6)
    assert part.stat().st_size == cut
    assert geri("models", "list", "--json").stdout.count('"local"') == 0  # nothing registered
    second = geri("install", "tiny")
    assert second.returncode == 0, second.stderr
    [_, resumed] = hub.gets(TINY.file)
    assert resumed.start == cut  # a range request from where it stopped
    assert resumed.sent == TINY_SIZE - cut
    assert destination(geri_home).stat().st_size == TINY_SIZE


def test_a_killed_install_resumes(hub: HubServer, geri_home: Path) -> None:
    hub.delay_per_mb = 0.05
    env = {
        **os.environ,
        "GERI_HOME": str(geri_home),
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(geri_home / "hf"),
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "geri", "install", "tiny"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    part = destination(geri_home).with_name(TINY.file + ".part")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        not part.exists() or part.stat().st_size < TINY_SIZE * 0.3
    ):
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    kept = part.stat().st_size
    assert 0 < kept < TINY_SIZE
    hub.delay_per_mb = 0.0
    done = run_geri("install", "tiny", home=geri_home, env={"HF_ENDPOINT": hub.url})
    assert done.returncode == 0, done.stderr
    assert hub.gets(TINY.file)[-1].start == kept
    assert destination(geri_home).stat().st_size == TINY_SIZE


def test_wrong_bytes_are_rejected_and_nothing_is_registered(
    geri: Geri, hub: HubServer, geri_home: Path
) -> None:
    hub.files[(TINY.repo, TINY.file)].corrupt = True
    proc = geri("install", "tiny")
    assert proc.returncode == 1
    assert "failed verification" in proc.stderr
    assert "nothing was installed" in proc.stderr
    path = destination(geri_home)
    assert not path.exists()
    assert not path.with_name(path.name + ".part").exists()
    assert [
        m for m in json.loads(geri("models", "list", "--json").stdout) if m["location"] == "local"
    ] == []


def _registry(home: Path) -> ModelRegistry:
    return ModelRegistry(Settings(), open_store(home / "g.db"))


def test_not_enough_disk_is_refused_before_any_download(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    small = Hardware(32 * 1024**3, 16 * 1024**3, 50_000_000, 8, 16)
    monkeypatch.setattr("geri.install.detect", lambda target: small)
    steps = plan(tmp_path / "models", "tiny")
    assert steps.problems == (
        f"it needs 0.3 GiB of disk at {tmp_path / 'models'} and 0.0 GiB is free",
    )
    with pytest.raises(InstallError, match="Nothing was downloaded"):
        install(_registry(tmp_path), steps)
    assert hub.heads == []
    assert hub.served == []
    info, added = install(_registry(tmp_path), steps, force=True)  # the user insists
    assert added
    assert info.id == "tiny"


def test_not_enough_ram_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weak = Hardware(1024**3, 100 * 1024**2, 10**12, 2, 2)
    monkeypatch.setattr("geri.install.detect", lambda target: weak)
    steps = plan(tmp_path, "tiny")
    assert "of RAM" in steps.problems[0]
    with pytest.raises(InstallError, match="--force"):
        install(_registry(tmp_path), steps)


def test_two_concurrent_installs_download_once(hub: HubServer, geri_home: Path) -> None:
    hub.delay_per_mb = 0.02
    env = {
        **os.environ,
        "GERI_HOME": str(geri_home),
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(geri_home / "hf"),
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "geri", "install", "tiny"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [c.communicate(timeout=120) for c in children]
    errors = "\n---\n".join(err[-3000:] for _, err in outputs)
    assert [c.returncode for c in children] == [0, 0], errors
    assert len(hub.gets(TINY.file)) == 1
    assert sorted("Installed tiny" in out for out, _ in outputs) == [False, True]
    assert destination(geri_home).stat().st_size == TINY_SIZE


def test_a_gated_repo_needs_a_token(geri: Geri, hub: HubServer) -> None:
    hub.files[(TINY.repo, TINY.file)].gated = True
    refused = geri("install", "tiny")
    assert refused.returncode == 1
    assert "is gated" in refused.stderr
    assert "HF_TOKEN" in refused.stderr
    assert hub.served == []
    allowed = geri("install", "tiny", env={"HF_TOKEN": hub.token})
    assert allowed.returncode == 0, allowed.stderr


def test_unknown_files_and_unreachable_hubs_are_clear(geri_cli: Geri, hub: HubServer) -> None:
    hub.files = {(TINY.repo, "other.gguf"): HubFile(b"x")}
    missing = geri_cli("install", "tiny", env={"HF_ENDPOINT": hub.url})
    assert missing.returncode == 1
    assert "was not found" in missing.stderr
    hub.files = {}
    no_repo = geri_cli("install", "tiny", env={"HF_ENDPOINT": hub.url})
    assert f"The repository {TINY.repo} was not found" in no_repo.stderr
    offline = geri_cli("install", "tiny", env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert offline.returncode == 1
    assert "Cannot reach the model hub" in offline.stderr
    assert "Traceback" not in missing.stderr + no_repo.stderr + offline.stderr


def test_dry_run_shows_the_plan_and_fetches_nothing(geri: Geri, hub: HubServer) -> None:
    proc = geri("install", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["model"] in {"llama3-8b", "bitnet-2b"}
    assert data["reason"]
    assert data["hardware"]["physical_cores"] >= 1
    assert hub.heads == []
    assert hub.served == []
    text = geri("install", "--model", "tiny", "--dry-run")
    assert "chosen by name" in text.stdout  # a plan is the command's output
    assert "SmolLM2" in text.stdout


def test_a_local_file_installs_offline(geri_cli: Geri, smollm_path: Path, tmp_path: Path) -> None:
    proc = geri_cli("install", str(smollm_path), "--id", "mine", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["id"] == "mine"
    assert data["metadata"]["sha256"] == TINY.sha256
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(smollm_path.read_bytes()[:1000])
    bad = geri_cli("install", str(cut))
    assert bad.returncode == 1
    assert "truncated" in bad.stderr
