"""Concurrent spenders cannot overspend: 50 processes reserve against one limit at once.

Each process opens the store itself (as 50 `geri ask` runs, or daemons on one PostgreSQL
database, would), waits at a shared start line, then reserves and settles. The limit admits
exactly 14 of them; any race in the reservation would admit more.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from geri.cost.ledger import Ledger
from geri.settings import Budgets
from geri.store import Store

PROCESSES = 50
EACH, LIMIT = 7_000_000, 100_000_000  # $7 a call against $100: 14 fit
WORKER = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from geri.cost.ledger import Ledger
from geri.errors import BudgetExhausted
from geri.settings import Budgets
from geri.store import open_store
from geri.types import ModelInfo

location, start, each = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
ledger = Ledger(open_store(location), Budgets(), lambda: datetime.now(UTC))
model = ModelInfo("gpt", "openai", "gpt-x", location="cloud")
print("ready", flush=True)
while not start.exists():
    time.sleep(0.001)
try:
    hold = ledger.reserve(model, each)
except BudgetExhausted:
    print("refused")
else:
    ledger.settle(hold, each)
    print("held")
"""


def test_fifty_processes_never_overspend(store: Store, location: str, tmp_path: Path) -> None:
    ledger = Ledger(store, Budgets(), lambda: datetime.now(UTC))
    ledger.set_limit("*", "monthly", LIMIT)
    start = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, location, str(start), str(EACH)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:  # everyone has opened the store and waits at the line
        assert worker.stdout is not None
        assert worker.stdout.readline() == "ready\n"
    start.touch()
    outcomes = [worker.communicate(timeout=120)[0].strip() for worker in workers]
    assert all(w.returncode == 0 for w in workers)
    assert outcomes.count("held") == LIMIT // EACH
    assert outcomes.count("refused") == PROCESSES - LIMIT // EACH
    [state] = ledger.status()
    assert state.spend.settled_micros == LIMIT // EACH * EACH
    assert state.spend.reserved_micros == 0
