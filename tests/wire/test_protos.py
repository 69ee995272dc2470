"""The generated gRPC code is what the protos say: regenerating it changes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_current(tmp_path: Path) -> None:
    out = tmp_path / "_pb"
    subprocess.run(["bash", "scripts/gen_protos.sh", str(out)], cwd=ROOT, check=True)
    committed = ROOT / "geri" / "wire" / "_pb"
    fresh = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    current = {
        p.relative_to(committed): p.read_bytes()
        for p in committed.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert fresh.keys() == current.keys()
    stale = [str(name) for name, data in fresh.items() if current[name] != data]
    assert stale == [], f"run scripts/gen_protos.sh: {stale} are out of date"
