"""The benchmarks still run: each one, briefly, with the smallest settings that exercise it.

This checks that they work (they import geri's internals and rot otherwise), not how fast
anything is: performance is read from full runs (benchmarks/README.md), never asserted here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize(
    ("script", "args", "reports"),
    [
        ("bench_local.py", ["--rounds", "1", "--max-tokens", "8"], "throughput ratio"),
        ("bench_gateway.py", ["--rounds", "3", "--warmup", "1"], "geri adds"),
        (
            "bench_daemon.py",
            ["--requests", "20", "--concurrency", "4", "--rounds", "1", "--asks", "1"],
            "warm daemon",
        ),
        ("bench_cache.py", ["--hits", "5", "--misses", "1"], "hit p50"),
        ("bench_cli.py", ["--rounds", "1", "--max-tokens", "4", "--llm", ""], "cache hit"),
        ("bench_rag.py", ["--documents", "40", "--bytes", "200000", "--rounds", "1"], "same as"),
        (
            "bench_http_client.py",
            ["--rounds", "1", "--calls", "20", "--concurrency", "4"],
            "CPU ms per call",
        ),
        (  # without llama-server, which CI does not build: geri against llama_cpp.server
            "bench_batch.py",
            ["--rounds", "1", "--max-tokens", "4", "--streams", "1,2"],
            "geri / llama_cpp.server",
        ),
    ],
)
def test_the_benchmark_runs(script: str, args: list[str], reports: str, smollm_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, script, *args],
        cwd=BENCHMARKS,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert reports in done.stdout
