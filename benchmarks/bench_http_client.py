"""The HTTP client under geri's cloud calls: aiohttp as geri configures it, against httpx as geri
configured it before (and as most Python gateways do) and httpx tuned (no pool limits, HTTP/1.1
only, no environment lookups). The figures chose aiohttp.

Each client POSTs the same chat completion to the mock OpenAI server (benchmarks/mock_openai.py,
its own process), C calls at a time, in paired rounds (the order rotating), and reads the JSON
answer. Reported per client: calls/s, and the CPU time this process spent per call (the cost
that competes with everything else in a daemon), as medians with the lowest and highest round.

    python benchmarks/bench_http_client.py --rounds 7 --calls 2000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from geri.providers.http import make_session
from geri.settings import Network

sys.path.insert(0, str(Path(__file__).parent))
from bench_gateway import free_port, start_server

PAYLOAD = {"model": "bench", "messages": [{"role": "user", "content": "Say hello."}]}
Call = Callable[[], Awaitable[object]]


async def run(call: Call, calls: int, concurrency: int) -> tuple[float, float]:
    """(calls per second, CPU milliseconds per call) for `calls` calls, `concurrency` at once."""
    pending = iter(range(calls))

    async def worker() -> None:
        for _ in pending:
            await call()

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return calls / wall, cpu / calls * 1000


def spread(values: list[float], digits: int) -> str:
    low, high = min(values), max(values)
    return f"{statistics.median(values):.{digits}f} ({low:.{digits}f}..{high:.{digits}f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    network = Network()
    try:
        before = httpx.AsyncClient(  # geri's client until aiohttp replaced it
            timeout=httpx.Timeout(network.read_timeout, connect=network.connect_timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )
        tuned = httpx.AsyncClient(
            timeout=httpx.Timeout(network.read_timeout, connect=network.connect_timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            http1=True,
            http2=False,
            trust_env=False,
        )
        session = make_session(network)

        async def with_httpx(client: httpx.AsyncClient) -> object:
            async with client.stream("POST", url, json=PAYLOAD) as response:
                return await response.aread()

        async def with_aiohttp() -> object:
            async with session.post(url, json=PAYLOAD) as response:
                return await response.read()

        clients: dict[str, Call] = {
            "aiohttp (geri)": with_aiohttp,
            "httpx (before)": lambda: with_httpx(before),
            "httpx tuned": lambda: with_httpx(tuned),
        }
        for call in clients.values():  # warm up: connections, first allocations
            await run(call, 200, args.concurrency)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        names = list(clients)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                results[name].append(await run(clients[name], args.calls, args.concurrency))
        print(
            f"{args.rounds} rounds of {args.calls} POSTs, {args.concurrency} at a time; "
            "median (lowest..highest)"
        )
        print(f"  {'client':<15} {'calls/s':>24} {'CPU ms per call':>26}")
        for name, taken in results.items():
            print(
                f"  {name:<15} {spread([t[0] for t in taken], 0):>24} "
                f"{spread([t[1] for t in taken], 3):>26}"
            )
        await before.aclose()
        await tuned.aclose()
        await session.close()
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
