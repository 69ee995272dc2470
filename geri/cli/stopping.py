"""SIGTERM and SIGHUP stop a command the way Ctrl-C does.

`timeout`, service managers, container runtimes and CI runners stop a command with SIGTERM, and
a closed terminal sends SIGHUP; the default for both ends Python on the spot: a call in flight
would leave no row in the request log and settle no budget reservation (its projected cost
would count until `budgets.reservation_timeout` and then not at all, though the provider may
have billed it). So geri hands either to whatever handles Ctrl-C at that moment: inside
`asyncio.run` that cancels the command's task, and the engine settles and logs the call as
cancelled, as it does for Ctrl-C; elsewhere it is a `KeyboardInterrupt` where the command is.
The command then exits 128 + the signal's number (143 for SIGTERM, 129 for SIGHUP), the status
shells and supervisors expect from a process ended by it.

Where Ctrl-C itself is ignored (a background job of a non-interactive shell), the signal ends
the process at once, as it would have without geri's handler; so does a signal that was ignored
when geri started (`nohup` ignores SIGHUP, and keeps doing so). The daemon installs its own
handlers for SIGTERM and SIGINT while it serves (`geri/daemon/server.py`).
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

INTERRUPTED = 128 + signal.SIGINT
STOPPING = (signal.SIGTERM, signal.SIGHUP)
_stopped_by: list[int] = []  # the signal that stopped the command, once one has


def install() -> None:
    """Handle SIGTERM and SIGHUP as Ctrl-C from now on (only the main thread may set
    handlers), unless the process was started with them ignored."""
    if threading.current_thread() is not threading.main_thread():
        return
    for stop in STOPPING:
        if signal.getsignal(stop) is not signal.SIG_IGN:
            signal.signal(stop, _on_stop)


def terminated() -> bool:
    """Whether this process was told to stop with SIGTERM or SIGHUP."""
    return bool(_stopped_by)


def how() -> str:
    """How the command was stopped, in a word for its last message."""
    return f"Stopped ({signal.Signals(_stopped_by[0]).name})" if _stopped_by else "Interrupted"


def exit_code() -> int:
    """The status to exit with after an interruption: 128 + the signal's number (130 for
    Ctrl-C)."""
    return 128 + _stopped_by[0] if _stopped_by else INTERRUPTED


def _on_stop(signum: int, frame: FrameType | None) -> None:
    if not _stopped_by:
        _stopped_by.append(signum)
    on_ctrl_c = signal.getsignal(signal.SIGINT)
    if callable(on_ctrl_c):
        on_ctrl_c(signal.SIGINT, frame)  # asyncio.run cancels its task; Python's raises
        return
    signal.signal(signum, signal.SIG_DFL)  # Ctrl-C is ignored here: end as before
    os.kill(os.getpid(), signum)
