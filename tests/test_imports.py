"""Every module imports on its own, in a fresh interpreter.

An import cycle hides as long as something else happens to import its modules in a working
order first; importing each module alone, first, is what exposes one. The layers that keep
cycles out are import-linter contracts in pyproject.toml (`lint-imports`, run by CI).
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import geri


def modules() -> list[str]:
    found = pkgutil.walk_packages(geri.__path__, "geri.")
    # generated stubs are not ours to shape; __main__ runs the CLI rather than defining anything
    return sorted(m.name for m in found if "._pb" not in m.name and m.name != "geri.__main__")


def test_the_walk_sees_every_layer() -> None:
    names = modules()
    for layer in ("geri.registry", "geri.selection.router", "geri.wire.client", "geri.cli.app"):
        assert layer in names


@pytest.mark.parametrize("module", modules())
def test_a_module_imports_alone(module: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
