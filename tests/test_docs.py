"""The documentation is current and its examples work."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from geri.paths import Paths
from tests.daemon.test_daemon import reset_gate, settings_with, start

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
__all__ = ["reset_gate"]  # the daemon tests' provider gate, opened for the example below


def test_the_generated_references_are_current(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "scripts/gen_docs.py", str(tmp_path)], cwd=ROOT, check=True)
    for name in ("configuration.md", "grpc-reference.md"):
        assert (DOCS / name).read_text() == (tmp_path / name).read_text(), (
            f"docs/{name} is out of date: run python scripts/gen_docs.py"
        )


def test_every_rpc_and_message_is_documented() -> None:
    protos = "\n".join(p.read_text() for p in (ROOT / "proto" / "geri" / "v1").glob("*.proto"))
    guide = (DOCS / "grpc.md").read_text()
    reference = (DOCS / "grpc-reference.md").read_text()
    for rpc in re.findall(r"^\s*rpc (\w+)", protos, re.MULTILINE):
        assert f"`{rpc}`" in guide, rpc
        assert f"`{rpc}(" in reference, rpc
    for message in re.findall(r"^message (\w+)", protos, re.MULTILINE):
        assert f"### message {message}" in reference, message


def test_links_between_documents_resolve() -> None:
    for page in [*DOCS.glob("*.md"), ROOT / "README.md"]:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


async def test_the_python_client_example_runs_against_a_daemon(
    paths: Paths, tmp_path: Path
) -> None:
    example = re.search(r"```python\n(.*?)```", (DOCS / "grpc.md").read_text(), re.DOTALL)
    assert example is not None
    script = tmp_path / "client.py"
    script.write_text(example[1])
    daemon = await start(paths, settings_with(tmp_path))
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            env={**os.environ, "GERI_ADDRESS": daemon.address},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await daemon.stop()
    assert process.returncode == 0, err.decode()
    text = out.decode()
    assert "echo: " in text  # the test daemon's model echoes the prompt
    assert "echo: 2 tokens, trace example-1" in text
    assert re.search(r"^echo: 1 requests, p50 \d+ ms$", text, re.MULTILINE)
