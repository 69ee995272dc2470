"""`geri config path|show|validate`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

Geri = Callable[..., CompletedProcess[str]]


def test_path_is_under_geri_home(geri_cli: Geri, geri_home: Path) -> None:
    proc = geri_cli("config", "path")
    assert proc.stdout.strip() == str(geri_home / "config" / "settings.json")


def test_show_prints_the_effective_settings_with_defaults(geri_cli: Geri) -> None:
    data = json.loads(geri_cli("config", "show").stdout)
    assert data["performance"]["context_size"] == 4096
    assert data["models"] == []


def test_validate_reports_each_problem_and_fails(geri_cli: Geri, geri_home: Path) -> None:
    assert "defaults apply" in geri_cli("config", "validate").stdout
    settings = geri_home / "config" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"performance": {"threads": -1, "colour": "red"}}))
    proc = geri_cli("config", "validate")
    assert proc.returncode == 1
    assert str(settings) in proc.stderr
    assert "performance.threads" in proc.stderr
    assert "performance.colour: unknown field" in proc.stderr
    assert "Traceback" not in proc.stderr
    # every command refuses to run on a broken settings file, with the same message
    asked = geri_cli("ask", "hi")
    assert asked.returncode == 1
    assert "performance.colour" in asked.stderr
    settings.write_text(json.dumps({"default_model": "x"}))
    assert "valid" in geri_cli("config", "validate").stdout
