"""SIGTERM stops a command the way Ctrl-C does.

`timeout`, service managers, container runtimes and CI runners stop a command with SIGTERM,
whose default ends Python on the spot: a call in flight would leave no row in the request log
and settle no budget reservation (its projected cost would count until
`budgets.reservation_timeout` and then not at all, though the provider may have billed it). So
geri hands SIGTERM to whatever handles Ctrl-C at that moment: inside `asyncio.run` that cancels
the command's task, and the engine settles and logs the call as cancelled, as it does for
Ctrl-C; elsewhere it is a `KeyboardInterrupt` where the command is. The command then exits 143
(128 + SIGTERM), the status shells and supervisors expect from a terminated process.

Where Ctrl-C itself is ignored (a background job of a non-interactive shell), SIGTERM ends the
process at once, as it would have without geri's handler. The daemon installs its own handler
for both signals while it serves (`geri/daemon/server.py`).
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

INTERRUPTED = 128 + signal.SIGINT
TERMINATED = 128 + signal.SIGTERM
_terminated = threading.Event()


def install() -> None:
    """Handle SIGTERM as Ctrl-C from now on (only the main thread may set handlers)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def terminated() -> bool:
    """Whether this process was told to stop with SIGTERM."""
    return _terminated.is_set()


def exit_code() -> int:
    """The status to exit with after an interruption: 143 for SIGTERM, 130 for Ctrl-C."""
    return TERMINATED if terminated() else INTERRUPTED


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _terminated.set()
    on_ctrl_c = signal.getsignal(signal.SIGINT)
    if callable(on_ctrl_c):
        on_ctrl_c(signal.SIGINT, frame)  # asyncio.run cancels its task; Python's raises
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # Ctrl-C is ignored here: end as before
    os.kill(os.getpid(), signal.SIGTERM)
