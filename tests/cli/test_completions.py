"""Shell completions: generated from the CLI, current, and working in a real bash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_completions_are_current(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "scripts/gen_completions.py", str(tmp_path)], cwd=ROOT, check=True
    )
    for name in ("geri.bash", "geri.zsh", "geri.fish"):
        fresh = (tmp_path / name).read_text()
        assert (ROOT / "completions" / name).read_text() == fresh, (
            f"completions/{name} is out of date: run python scripts/gen_completions.py"
        )


def complete(*words: str) -> list[str]:
    """What bash offers after `words` (the last one being completed)."""
    script = f"""
source {ROOT / "completions" / "geri.bash"}
COMP_WORDS=({" ".join(f"'{w}'" for w in words)})
COMP_CWORD={len(words) - 1}
_geri
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line]


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        (
            ("geri", ""),
            [
                "ask",
                "budget",
                "cache",
                "config",
                "daemon",
                "install",
                "keys",
                "logs",
                "models",
                "route",
                "stats",
                "vision",
            ],
        ),
        (("geri", "vi"), ["vision"]),
        (("geri", "budget", "s"), ["set", "status"]),
        (("geri", "keys", "r"), ["remove", "rotate"]),
        (("geri", "ask", "--no-"), ["--no-stream", "--no-cache", "--no-daemon"]),
        (("geri", "vision", "photo.png", "--max-f"), ["--max-frames"]),
        (("geri", "ask", "--model", ""), []),  # a value: bash falls back to files
        (("geri", "models", "list", "--j"), ["--json"]),
    ],
)
def test_bash_completes_commands_and_options(words: tuple[str, ...], offered: list[str]) -> None:
    assert complete(*words) == offered


def test_zsh_and_fish_know_every_command() -> None:
    zsh = (ROOT / "completions" / "geri.zsh").read_text()
    fish = (ROOT / "completions" / "geri.fish").read_text()
    for command in ("ask", "vision", "budget set", "cache clear", "daemon status", "stats"):
        assert f'"{command}"' in zsh
        assert f"'{command.split()[-1]}'" in zsh or f"'{command.split()[-1]}:" in zsh
        assert f"-a {command.split()[-1]}" in fish
    assert "#compdef geri" in zsh
    assert "complete -c geri" in fish
