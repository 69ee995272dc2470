"""Response-cache hits: how fast geri answers a repeated request in-process.

Side by side in one run: a cache hit through the engine (`Engine.ask`, which also resolves the
model, builds the key and logs the request), the store lookup alone (the floor), and the same
request answered by the local model with the cache off (what a hit saves). A hit from the
command line, process start included, is measured by bench_cli.py.

Target: a hit in-process at most 1 ms at the median.

    python benchmarks/bench_cache.py                 # the SmolLM2 test model
    python benchmarks/bench_cache.py --hits 2000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench_local import default_model

from geri.cost.periods import epoch_micros
from geri.engine import Engine
from geri.engine.requests import chat_request
from geri.prompt import build_messages
from geri.settings import LocalModel, Settings
from geri.store import open_store
from geri.types import ChatRequest, Request

QUESTION = "In one sentence: why do cats purr?"


def quantiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return samples[0], samples[0]
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), cuts[98]


async def in_process(model: Path, hits: int, misses: int) -> dict[str, list[float]]:
    settings = Settings(models=(LocalModel(id="smol", path=model),), default_model="smol")
    with tempfile.TemporaryDirectory() as home:
        engine = Engine(settings, open_store(Path(home) / "geri.db"))
        request = Request(QUESTION, max_tokens=24, temperature=0.0)
        first = await engine.ask(request)  # fills the cache (and loads the model)
        times: dict[str, list[float]] = {"hit": [], "lookup": [], "model": []}
        key = engine.cache.key(await engine.resolve(request), _chat(request), ())
        for _ in range(hits):
            start = time.perf_counter()
            result = await engine.ask(request)
            times["hit"].append(time.perf_counter() - start)
            assert result.cached
            assert result.text == first.text
            start = time.perf_counter()
            engine.store.cache_get(key, epoch_micros(datetime.now(UTC)))
            times["lookup"].append(time.perf_counter() - start)
        uncached = Request(QUESTION, max_tokens=24, temperature=0.0, use_cache=False)
        for _ in range(misses):
            start = time.perf_counter()
            await engine.ask(uncached)
            times["model"].append(time.perf_counter() - start)
        await engine.aclose()
    return times


def _chat(request: Request) -> ChatRequest:
    return chat_request(request, build_messages(request))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--hits", type=int, default=1000)
    parser.add_argument("--misses", type=int, default=5)
    args = parser.parse_args()
    model = args.model or default_model()
    times = asyncio.run(in_process(model, args.hits, args.misses))
    print(f"{'':<10}{'p50 ms':>10}{'p99 ms':>10}{'runs':>7}")
    for name, samples in times.items():
        p50, p99 = quantiles(samples)
        print(f"{name:<10}{p50 * 1000:>10.3f}{p99 * 1000:>10.3f}{len(samples):>7}")
    hit = statistics.median(times["hit"])
    print(
        f"\nhit p50 {hit * 1000:.3f} ms (target <= 1 ms): "
        f"{statistics.median(times['model']) / hit:.0f}x faster than asking the model; "
        f"{hit / statistics.median(times['lookup']):.1f}x the bare store lookup"
    )


if __name__ == "__main__":
    main()
