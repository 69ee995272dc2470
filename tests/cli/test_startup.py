"""`geri --help` and `--version` stay light: no model runtime, HTTP or gRPC library loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_help_lists_every_command_and_imports_none_of_them() -> None:
    """`geri --help` names each command with its summary from the table in geri/cli/app.py,
    without importing a command module or rich: it costs Python, Typer, that file and the
    SIGTERM handler (`stopping.py`, the standard library's signal module)."""
    from geri.cli.app import COMMANDS

    probe = (
        "import sys\nfrom geri.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n"
        "    pass\nloaded = [m for m in sys.modules if m.startswith(('geri.cli.', 'rich'))]\n"
        "print('LOADED:', ','.join(sorted(loaded)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.split("Commands:")[1]
    for name, entry in COMMANDS.items():
        assert f"{name}  " in listed, name
        assert entry.summary in listed, name
    assert proc.stdout.strip().endswith("LOADED: geri.cli.app,geri.cli.stopping"), proc.stdout


def test_a_command_writing_to_a_pipe_never_imports_rich(tmp_path: Path) -> None:
    """Output that is no terminal is plain text (what rich would print there), written
    without importing rich: scripts that run geri pay nothing for styling."""
    probe = (
        "import sys\nfrom geri.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit:\n    pass\nprint('RICH:', 'rich' in sys.modules, file=sys.stderr)"
    )
    env = {**os.environ, "GERI_HOME": str(tmp_path)}
    env.pop("FORCE_COLOR", None)
    shown = subprocess.run(
        [sys.executable, "-c", probe, "config", "path"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert shown.stdout.strip().endswith("settings.json"), shown.stdout
    assert shown.stderr.strip().endswith("RICH: False"), shown.stderr
    failed = subprocess.run(
        [sys.executable, "-c", probe, "ask", "--rag", str(tmp_path / "missing.json"), "hi"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert failed.stderr.startswith("Error: "), failed.stderr
    assert "missing.json" in failed.stderr
    assert failed.stderr.strip().endswith("RICH: False"), failed.stderr
