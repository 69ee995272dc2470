"""Latency geri adds to a cloud call, against a raw httpx call and LiteLLM, side by side.

A minimal OpenAI-compatible server runs in its own process on 127.0.0.1 (benchmarks/mock_openai.py)
and answers instantly, so what remains is each client's own work. Per round, in shuffled order:
raw POSTs with `aiohttp` (the client geri uses) and with `httpx` (the one LiteLLM's OpenAI SDK
uses), `geri`'s engine (request log included), and `litellm.acompletion` when litellm is
installed. Measured: a non-streamed call, and the time to the first text chunk of a streamed
one. Reported: medians with the interquartile range, the latency each adds over the faster raw
client (the floor), and geri's addition as a fraction of LiteLLM's. Targets: geri adds at most
0.3 ms, and at most 0.1 of what LiteLLM adds.

    python benchmarks/bench_gateway.py --rounds 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from pathlib import Path

import aiohttp
import httpx

from geri.engine import Engine
from geri.keys import KeyStore
from geri.settings import Cache, CloudModel, Settings
from geri.specs import key_env_names
from geri.store import open_store
from geri.types import Request

PROMPT = "Say hello."
# a pause before each measured call, so background work a client leaves behind (LiteLLM's
# logging tasks, say) is not billed to whichever side happens to run next
SETTLE = 0.003
Timer = Callable[[], Awaitable[float]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    script = Path(__file__).with_name("mock_openai.py")
    proc = subprocess.Popen([sys.executable, str(script), str(port)])
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=0.2)
            return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the mock server did not start")


PAYLOAD = {"model": "bench", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 32}


def first_text(line: str) -> bool:
    """Whether an SSE line carries the answer's first text."""
    if not line.startswith("data:") or line[5:].strip() == "[DONE]":
        return False
    choices = json.loads(line[5:])["choices"]
    return bool(choices and choices[0]["delta"].get("content"))


def raw_timers(base: str) -> tuple[Timer, Timer, httpx.AsyncClient]:
    client = httpx.AsyncClient(timeout=httpx.Timeout(120, connect=10))

    async def plain() -> float:
        start = time.perf_counter()
        response = await client.post(f"{base}/chat/completions", json=PAYLOAD)
        assert response.json()["choices"][0]["message"]["content"]
        return time.perf_counter() - start

    async def first_chunk() -> float:
        start, elapsed = time.perf_counter(), None
        body = {**PAYLOAD, "stream": True}
        async with client.stream("POST", f"{base}/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if elapsed is None and first_text(line):
                    elapsed = time.perf_counter() - start
        assert elapsed is not None
        return elapsed

    return plain, first_chunk, client


def aiohttp_timers(base: str) -> tuple[Timer, Timer, aiohttp.ClientSession]:
    session = aiohttp.ClientSession()

    async def plain() -> float:
        start = time.perf_counter()
        async with session.post(f"{base}/chat/completions", json=PAYLOAD) as response:
            assert json.loads(await response.read())["choices"][0]["message"]["content"]
        return time.perf_counter() - start

    async def first_chunk() -> float:
        start, elapsed = time.perf_counter(), None
        body = {**PAYLOAD, "stream": True}
        async with session.post(f"{base}/chat/completions", json=body) as response:
            async for line in response.content:
                if elapsed is None and first_text(line.decode()):
                    elapsed = time.perf_counter() - start
        assert elapsed is not None
        return elapsed

    return plain, first_chunk, session


def geri_timers(base: str, home: Path) -> tuple[Timer, Timer, Engine]:
    model = CloudModel(
        kind="cloud", id="bench", provider="openai_compatible", model="bench", base_url=base
    )
    engine = Engine(
        # repeated identical requests: with the cache on, geri would not call the server at all
        Settings(models=(model,), cache=Cache(enabled=False)),
        open_store(home / "geri.db"),
        keys=KeyStore(key_env_names(), {}, backend=_NoKeyring()),
    )
    request = Request(PROMPT, model="bench", max_tokens=32)

    async def plain() -> float:
        start = time.perf_counter()
        await engine.ask(request)
        return time.perf_counter() - start

    async def first_chunk() -> float:
        start = time.perf_counter()
        elapsed = None
        async with aclosing(engine.stream(request)) as chunks:
            async for chunk in chunks:
                if chunk.text and elapsed is None:
                    elapsed = time.perf_counter() - start
        assert elapsed is not None
        return elapsed

    return plain, first_chunk, engine


class _NoKeyring:
    def get_password(self, service: str, username: str) -> None:
        return None


def litellm_timers(base: str) -> tuple[Timer, Timer] | None:
    try:
        import litellm
    except ImportError:
        return None
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    options = {
        "model": "openai/bench",
        "api_base": base,
        "api_key": "sk-bench",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 32,
    }

    async def plain() -> float:
        start = time.perf_counter()
        response = await litellm.acompletion(**options)
        assert response.choices[0].message.content
        return time.perf_counter() - start

    async def first_chunk() -> float:
        start = time.perf_counter()
        elapsed = None
        stream = await litellm.acompletion(**options, stream=True)
        async for chunk in stream:
            if elapsed is None and chunk.choices and chunk.choices[0].delta.content:
                elapsed = time.perf_counter() - start
        assert elapsed is not None
        return elapsed

    return plain, first_chunk


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        with tempfile.TemporaryDirectory() as home:
            raw_plain, raw_stream, raw_client = raw_timers(base)
            aio_plain, aio_stream, aio_session = aiohttp_timers(base)
            geri_plain, geri_stream, engine = geri_timers(base, Path(home))
            sides: dict[str, tuple[Timer, Timer]] = {
                "raw aiohttp": (aio_plain, aio_stream),
                "raw httpx": (raw_plain, raw_stream),
                "geri": (geri_plain, geri_stream),
            }
            lite = litellm_timers(base)
            if lite is not None:
                sides["litellm"] = lite
            samples: dict[str, dict[str, list[float]]] = {
                name: {"call": [], "first chunk": []} for name in sides
            }
            shuffler = random.Random(1)
            names = list(sides)
            for n in range(args.warmup + args.rounds):
                shuffler.shuffle(names)  # no side always runs right after the same other one
                for name in names:
                    plain, stream = sides[name]
                    await asyncio.sleep(SETTLE)
                    call = await plain()
                    await asyncio.sleep(SETTLE)
                    first = await stream()
                    if n >= args.warmup:
                        samples[name]["call"].append(call)
                        samples[name]["first chunk"].append(first)
            await raw_client.aclose()
            await aio_session.close()
            await engine.aclose()
    finally:
        server.terminate()
        server.wait()

    print(
        f"{args.rounds} interleaved rounds against a local mock server "
        f"(after {args.warmup} warm-up)"
    )
    if lite is None:
        print("litellm is not installed: comparing with raw httpx only")
    for metric in ("call", "first chunk"):
        floor = min(statistics.median(samples[raw][metric]) for raw in ("raw aiohttp", "raw httpx"))
        floor *= 1000
        print(f"\n{metric} (median ms (p25..p75), and added over the faster raw client)")
        added = {}
        for name in sides:
            values = sorted(v * 1000 for v in samples[name][metric])
            value = statistics.median(values)
            q1, q3 = values[len(values) // 4], values[3 * len(values) // 4]
            added[name] = value - floor
            print(f"  {name:>11}: {value:7.3f} ({q1:.3f}..{q3:.3f}) ms   +{added[name]:6.3f} ms")
        if "litellm" in added and added["litellm"] > 0:
            print(
                f"  geri's overhead / litellm's: {added['geri'] / added['litellm']:.3f}"
                "  (target <= 0.1)"
            )
        print(f"  geri adds {added['geri']:.3f} ms  (target <= 0.3 ms)")


if __name__ == "__main__":
    asyncio.run(main())
