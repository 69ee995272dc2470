"""The `geri` command line: a thin layer of parse -> engine call -> render.

`main` is the console script. It turns any `GeriError` into a one-line message on stderr and
its exit code, so a user's mistake never ends in a traceback, and it stops on SIGTERM and SIGHUP
as on Ctrl-C (`stopping.py`), so a call in flight is still logged and settled. Command modules
import the engine inside their functions: `geri --help` and `geri --version` stay fast and load
no model runtime, HTTP or gRPC library.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from geri.errors import GeriError, InputError


def _utf8(args: Sequence[str]) -> None:
    """Refuse arguments that are not valid UTF-8 (Python keeps their bytes as surrogates,
    which would fail much later, wherever the text is first encoded)."""
    for n, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(
                f"Argument {n} is not valid UTF-8 (at character {exc.start + 1}); "
                "pass text in UTF-8."
            ) from None


def main(argv: Sequence[str] | None = None) -> None:
    args = list(argv) if argv is not None else sys.argv[1:]
    if args in (["--version"], ["-V"]):  # answered before the app (Typer, rich) is built
        from geri._version import __version__

        try:
            sys.stdout.write(f"geri {__version__}\n")
            sys.stdout.flush()
        except (OSError, AttributeError, ValueError) as exc:  # full, closed (None), shut
            _unwritable(exc)
        return

    # pydantic looks for plugins among every installed distribution's entry points the first
    # time a model is built (15-20 ms of every command); geri's own process has none to load
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from geri.cli import stopping
    from geri.cli.app import command

    stopping.install()  # SIGTERM and SIGHUP stop a command as Ctrl-C does: calls are logged
    try:
        _utf8(args)
        command()(args=args, prog_name="geri")
    except GeriError as exc:
        from geri.cli import render

        render.error(str(exc))
        sys.exit(exc.exit_code)
    except SystemExit:
        if stopping.terminated():  # however the command ended once told to stop
            sys.exit(stopping.exit_code())
        raise
    except OSError as exc:  # written by click itself (help, usage): geri's own is OutputError
        if exc.errno not in UNWRITABLE:
            raise
        _unwritable(exc)


# what writing to stdout fails with when it cannot be written: full, closed, broken, too big
UNWRITABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EBADF, errno.EIO, errno.EFBIG})


def _unwritable(exc: BaseException) -> NoReturn:
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "it is closed"
    with contextlib.suppress(OSError, AttributeError, ValueError):  # stderr may be gone too
        sys.stderr.write(f"Error: Cannot write to stdout: {why}.\n")
    sys.exit(1)
