"""The user's own daemon from outside: is one running, where, and stopping it.

The daemon writes `Paths.daemon_state` (address, pid, token file) while it serves and removes it
once it has drained. `running()` trusts that file only while the process it names is alive.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from geri.errors import InputError
from geri.paths import Paths
from geri.wire import DaemonAddress


def running(paths: Paths) -> DaemonAddress | None:
    """The daemon this user runs, if its state file names a live process."""
    try:
        state = json.loads(paths.daemon_state.read_text())
        pid, address = int(state["pid"]), str(state["address"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not alive(pid):
        return None
    token = os.environ.get("GERI_DAEMON_TOKEN")
    if token is None and state.get("token_file"):
        try:
            token = Path(state["token_file"]).expanduser().read_text().strip()
        except OSError:
            token = None
    return DaemonAddress(address, pid, token)


def http_address(paths: Paths) -> str | None:
    """The base URL of the running daemon's OpenAI-compatible API, if it serves one."""
    try:
        http = json.loads(paths.daemon_state.read_text()).get("http")
    except (OSError, ValueError, AttributeError):
        return None
    return http if isinstance(http, str) else None


def alive(pid: int) -> bool:
    """Is process `pid` running (an exited one its parent has not reaped yet is not)?"""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop(paths: Paths, timeout: float) -> int:
    """Ask the running daemon to drain and exit (SIGTERM); wait up to `timeout` seconds for it
    to be gone. Returns its pid."""
    found = running(paths)
    if found is None:
        raise InputError("No daemon is running.")
    os.kill(found.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(found.pid) or not paths.daemon_state.exists():  # gone, or done draining
            return found.pid
        time.sleep(0.1)
    raise InputError(f"The daemon (pid {found.pid}) is still draining after {timeout:g} s.")
