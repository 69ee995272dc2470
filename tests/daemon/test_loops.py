"""The daemon's event loop: uvloop where it is installed (it is a dependency on Linux and
macOS), asyncio's own on request, and a clear error when uvloop is asked for but missing."""

from __future__ import annotations

import asyncio
import sys
import urllib.request
from pathlib import Path

import pytest

from geri.daemon.loops import loop_factory, loop_name
from geri.errors import ConfigError
from tests.daemon.httpd import daemon_process


def test_auto_runs_on_uvloop_where_it_is_installed() -> None:
    pytest.importorskip("uvloop")
    factory = loop_factory("auto")
    assert factory is not None
    with asyncio.Runner(loop_factory=factory) as runner:
        assert runner.run(_running_loop_name()) == "uvloop"


def test_asyncio_is_asyncio_s_own_loop() -> None:
    assert loop_factory("asyncio") is None
    with asyncio.Runner(loop_factory=loop_factory("asyncio")) as runner:
        assert runner.run(_running_loop_name()) == "asyncio"


def test_without_uvloop_auto_falls_back_and_uvloop_says_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    assert loop_factory("auto") is None
    with pytest.raises(ConfigError, match="pip install uvloop"):
        loop_factory("uvloop")


@pytest.mark.parametrize("choice", ["auto", "asyncio"])
def test_a_daemon_serves_on_the_loop_chosen(tmp_path: Path, choice: str) -> None:
    expected = "asyncio" if choice == "asyncio" else "uvloop"
    if expected == "uvloop":
        pytest.importorskip("uvloop")
    settings = {"daemon": {"preload": False, "event_loop": choice}}
    with daemon_process(tmp_path, settings, {}) as (base, _):
        with urllib.request.urlopen(base.removesuffix("/v1") + "/healthz", timeout=30) as reply:
            assert reply.status == 200
        log = (tmp_path / "daemon.log").read_text()
    assert f"event loop {expected})" in log, log


async def _running_loop_name() -> str:
    return loop_name(asyncio.get_running_loop())
