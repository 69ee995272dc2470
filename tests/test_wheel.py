"""The wheel users install holds every file the package reads.

The suite runs from the source tree, where every data file is present whether or not it is
packaged; only the built wheel shows what a user gets. This builds it and checks it against two
lists made independently of the packaging settings: the files git tracks under `geri/` that are
not Python source, and the data files the code opens through `importlib.resources`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("geri-*.whl")
    return zipfile.ZipFile(built)


@pytest.fixture(scope="module")
def wheel_names(wheel: zipfile.ZipFile) -> set[str]:
    return set(wheel.namelist())


def tracked_data_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "geri"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [p for p in listed if not p.endswith(".py")]


def resources_read() -> list[str]:
    """`resources.files("geri.x").joinpath("name")` calls anywhere in the package."""
    found = []
    for source in (ROOT / "geri").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text("utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "joinpath"
                and isinstance(node.func.value, ast.Call)
                and getattr(node.func.value.func, "attr", None) == "files"
            ):
                continue
            package = node.func.value.args[0]
            name = node.args[0]
            assert isinstance(package, ast.Constant), source
            assert isinstance(name, ast.Constant), source
            assert isinstance(package.value, str), source
            found.append(f"{package.value.replace('.', '/')}/{name.value!s}")
    return found


def test_the_package_reads_its_data_through_importlib_resources() -> None:
    assert {"geri/install/catalog.json", "geri/providers/cloud_models.json"} <= set(
        resources_read()
    )


def test_the_wheel_holds_every_file_the_package_reads(wheel_names: set[str]) -> None:
    missing = [p for p in resources_read() if p not in wheel_names]
    assert not missing, f"read by the code but not in the wheel: {missing}"


def test_the_wheel_holds_every_data_file_in_the_source(wheel_names: set[str]) -> None:
    missing = [p for p in tracked_data_files() if p not in wheel_names]
    assert not missing, f"tracked under geri/ but not in the wheel: {missing}"


def test_the_wheel_is_typed_and_has_its_console_script(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert "geri/py.typed" in names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "geri = geri.cli:main" in wheel.read(entry_points).decode()
