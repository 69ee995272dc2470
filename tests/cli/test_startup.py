"""`geri --help` and `--version` stay light: no model runtime, HTTP or gRPC library loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

from geri import __version__

HEAVY = ("llama_cpp", "grpc", "huggingface_hub", "httpx", "PIL", "av")
PROBE = """
import sys
from geri.cli import main
try:
    main({args!r})
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY:", ",".join(heavy))
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["ask", "--help"], ["models", "--help"], ["config", "path"]],
)
def test_light_commands_import_no_heavy_library(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("HEAVY:"), proc.stdout


def test_version_prints_the_package_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "geri", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.strip() == f"geri {__version__}"
