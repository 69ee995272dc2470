"""The `geri` command line: a thin layer of parse -> engine call -> render.

`main` is the console script. It turns any `GeriError` into a one-line message on stderr and
its exit code, so a user's mistake never ends in a traceback. Command modules import the engine
inside their functions: `geri --help` and `geri --version` stay fast and load no model runtime,
HTTP or gRPC library.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from geri.errors import GeriError


def main(argv: Sequence[str] | None = None) -> None:
    from geri.cli import render
    from geri.cli.app import command

    try:
        command()(args=list(argv) if argv is not None else None, prog_name="geri")
    except GeriError as exc:
        render.error(str(exc))
        sys.exit(exc.exit_code)
