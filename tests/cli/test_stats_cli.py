"""`geri stats` from the command line, over the request log."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

Geri = Callable[..., CompletedProcess[str]]


def test_stats_over_the_log(geri_cli: Geri, smollm_path: Path) -> None:
    assert geri_cli("models", "add", str(smollm_path), "--id", "smol").returncode == 0
    assert "No requests in the last 24h" in geri_cli("stats").stdout
    question = ("ask", "Name a fruit.", "-t", "0", "--max-tokens", "8", "--no-daemon")
    for _ in range(2):
        assert geri_cli(*question).returncode == 0
    report = json.loads(geri_cli("stats", "--json").stdout)
    [smol] = report["models"]
    assert (smol["model"], smol["requests"], smol["cached"], smol["errors"]) == ("smol", 2, 1, 0)
    assert smol["latency_p50_ms"] > 0
    assert smol["tokens_per_second"] > 0
    assert report["daemon"] is None
    table = geri_cli("stats", "--since", "1h")
    assert "smol" in table.stdout
    assert "Last 1h" in table.stdout
    bad = geri_cli("stats", "--since", "yesterday")
    assert bad.returncode == 2
    assert "--since takes a period like 30m, 24h, 7d or 4w" in bad.stderr


def test_each_call_is_a_line_in_the_log_file(
    geri_cli: Geri, geri_home: Path, smollm_path: Path
) -> None:
    geri_cli("models", "add", str(smollm_path), "--id", "smol")
    geri_cli("ask", "Hi", "--max-tokens", "4", "--no-daemon")
    [log] = list(geri_home.rglob("geri.log"))  # the canary test checks no key ever gets here
    assert re.search(r" INFO +geri\.engine \[[0-9a-f]{16}\] ok smol in \d+ ms", log.read_text())
