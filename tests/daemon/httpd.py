"""A real `geri daemon` process serving the OpenAI-compatible HTTP API, for the HTTP tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def http_daemon(home: Path, settings: dict[str, Any], env: dict[str, str]) -> Iterator[str]:
    """Start `geri daemon` with `settings` (an HTTP port is added) in `home`; yield its
    `.../v1` base URL, and stop it after."""
    with daemon_process(home, settings, env) as (base, _):
        yield base


@contextmanager
def daemon_process(
    home: Path, settings: dict[str, Any], env: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`http_daemon`, also yielding the process (to signal or kill it)."""
    settings = {**settings, "daemon": {"port": 0, "http_port": 0, **settings.get("daemon", {})}}
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "settings.json").write_text(json.dumps(settings))
    env = {**os.environ, "GERI_HOME": str(home), **env}
    log = (home / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "geri", "daemon"], env=env, stdout=log, stderr=log
    )
    state = home / "data" / "daemon.json"
    deadline = time.monotonic() + 120
    try:
        while not (state.exists() and json.loads(state.read_text()).get("http")):
            assert proc.poll() is None, (home / "daemon.log").read_text()
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.1)
        yield json.loads(state.read_text())["http"] + "/v1", proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(60)
        log.close()


def request_log(home: Path) -> list[dict[str, Any]]:
    """The daemon's request log, as `geri logs --json` prints it."""
    env = {**os.environ, "GERI_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "geri", "logs", "--json", "-n", "50"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]
