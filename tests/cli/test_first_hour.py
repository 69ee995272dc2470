"""What a newcomer meets in the first hour: help that teaches, tables that read at 80 columns
and through a pipe, one message per error, plans on stdout, cached answers that say so."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from geri.cli.app import command

Geri = Callable[..., CompletedProcess[str]]
ROOT = Path(__file__).resolve().parents[2]
LONG_ID = "a-rather-long-model-identifier.q4_k_m"  # 37 characters
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def in_terminal(home: Path, *args: str, columns: int = 80) -> str:
    """`geri ARGS` with stdout on a pseudo-terminal `columns` wide; what the screen shows."""
    main, other = pty.openpty()
    env = {
        **os.environ,
        "GERI_HOME": str(home),
        "COLUMNS": str(columns),
        "LINES": "50",
        "NO_COLOR": "1",
        "HF_HOME": str(home / "hf"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "geri", *args],
        stdin=subprocess.DEVNULL,
        stdout=other,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    os.close(other)
    screen = b""
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the other end closed
            break
        if not data:
            break
        screen += data
    os.close(main)
    assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode()).replace("\r\n", "\n")


def commands(node: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    node = node or command()
    yield path
    for name in node.list_commands(None) if hasattr(node, "list_commands") else ():
        yield from commands(node.get_command(None, name), (*path, name))


@pytest.fixture
def registered(geri_cli: Geri, smollm_path: Path) -> Geri:
    added = geri_cli("models", "add", str(smollm_path), "--id", LONG_ID)
    assert added.returncode == 0, added.stderr
    return geri_cli


@pytest.mark.parametrize("path", list(commands()), ids=lambda p: " ".join(p) or "geri")
def test_help_names_no_value_for_a_flag_and_only_readme_sections_that_exist(
    geri_cli: Geri, path: tuple[str, ...]
) -> None:
    shown = geri_cli(*path, "--help", env={"COLUMNS": "80"})
    assert shown.returncode == 0, shown.stderr
    assert "<bool>" not in shown.stdout
    headings = [line.lstrip("#").strip() for line in (ROOT / "README.md").read_text().splitlines()]
    flat = " ".join(shown.stdout.replace("│", " ").split())
    for section in re.findall(r"'([^']+)' in the README", flat):
        assert any(h.startswith(section) for h in headings if h), section


def test_a_missing_key_is_said_once(geri_cli: Geri) -> None:
    proc = geri_cli("ask", "-m", "gpt-4o", "hello")
    assert proc.returncode != 0
    assert proc.stderr.count("No key for 'openai'") == 1, proc.stderr
    assert proc.stdout == ""


def test_without_a_keyring_the_fix_is_the_environment_variable(
    geri_cli: Geri, tmp_path: Path
) -> None:
    from PIL import Image

    Image.new("RGB", (16, 16), "red").save(tmp_path / "red.png")
    vision = geri_cli("vision", str(tmp_path / "red.png"), env=NO_KEYRING)
    asked = geri_cli("ask", "-m", "gpt-4o", "hello", env=NO_KEYRING)
    for proc in (vision, asked):
        assert proc.returncode != 0
        assert "set OPENAI_API_KEY" in proc.stderr
        assert "run 'geri keys set" not in proc.stderr
        assert "Traceback" not in proc.stderr


def test_config_show_has_the_default_model_and_the_registry(registered: Geri) -> None:
    shown = json.loads(registered("config", "show").stdout)
    assert shown["default_model"] == LONG_ID
    assert [m["id"] for m in shown["registry"]["models"]] == [LONG_ID]
    assert shown["registry"]["store"].endswith("geri.db")


def test_config_show_never_shows_a_database_password(geri_cli: Geri) -> None:
    url = "postgresql://geri:s3cret-pass@127.0.0.1:1/geri"
    proc = geri_cli("config", "show", env={"GERI_STORE": url})
    assert "s3cret-pass" not in proc.stdout + proc.stderr


def test_an_install_plan_is_the_commands_output(geri_cli: Geri) -> None:
    plan = geri_cli("install", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "machine:" in plan.stdout
    assert plan.stderr == ""
    as_json = json.loads(geri_cli("install", "--dry-run", "--json").stdout)
    assert as_json["model"]


def test_route_explain_piped_keeps_whole_ids_and_explains_its_heads(registered: Geri) -> None:
    shown = registered("route", "hello", "--explain", env={"COLUMNS": "80"})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[1].split() == ["model", "score", "size", "hw", "rel", "lat", "dist", "cost"]
    assert lines[2].split()[0] == f"*{LONG_ID}"
    for head in ("hw = hardware fit", "rel = reliability", "lat = latency", "dist = distance"):
        assert head in shown.stdout


@pytest.mark.parametrize(
    "args", [("models", "list"), ("route", "hello", "--explain"), ("install", "--list")]
)
def test_tables_fit_80_columns_and_never_cut_an_id(
    registered: Geri, geri_home: Path, args: tuple[str, ...]
) -> None:
    screen = in_terminal(geri_home, *args)
    table = screen.split("\n\n")[0]  # then the legend, in prose
    assert all(len(line) <= 80 for line in table.splitlines()), table
    if args[0] != "install":
        assert LONG_ID in screen
    assert "…" not in table


def test_a_cached_answer_says_so_quietly_and_reports_no_rate(registered: Geri) -> None:
    args = ("ask", "-t", "0", "--max-tokens", "8", "Say hello.")
    first, again = registered(*args), registered(*args)
    assert first.returncode == again.returncode == 0
    assert "cache" not in first.stderr
    assert again.stdout == first.stdout
    assert [line for line in again.stderr.splitlines() if "cache" in line] == [
        "(answered from the cache; --no-cache asks the model afresh)"
    ]
    answer = json.loads(registered(*args, "--json").stdout)
    assert answer["cached"] is True
    assert answer["tokens_per_second"] is None
    fresh = json.loads(registered(*args, "--json", "--no-cache").stdout)
    assert fresh["cached"] is False
    assert fresh["tokens_per_second"] > 0
