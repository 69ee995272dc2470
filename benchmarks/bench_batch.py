"""Concurrent streams on one local model: the geri daemon against llama.cpp's servers.

For N = 1, 2, 4, 8 concurrent streams (each a different prompt, greedy, the same token budget)
it measures aggregate tokens/s and time to first token (p50, p99) on:

  * geri: `geri daemon` over gRPC (StreamPrompt), `performance.parallel` = the largest N;
  * llama-server: llama.cpp's own server (`--llama-server PATH`), `--parallel` = the largest N,
    the same threads and the same context per sequence;
  * llama_cpp.server: llama-cpp-python's server (one request at a time, as it serves);
  * in-process: geri's engine in this process, for the daemon's own overhead.

Every server runs in its own process, started once; a round runs each side in turn (the order
rotating between rounds) so a noisy machine hits all alike, and ratios are taken per round. It
prints medians with the spread (lowest to highest over the rounds) so a 5 % difference can be told
from noise.

    python benchmarks/bench_batch.py --llama-server ~/llama.cpp/build/bin/llama-server
    python benchmarks/bench_batch.py --rounds 5 --max-tokens 64 --threads 2 --streams 1,2,4,8

How to build llama-server from the llama.cpp that llama-cpp-python vendors is in the README.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx

from geri.wire._pb.geri.v1 import wolf_pb2 as pb
from geri.wire._pb.geri.v1 import wolf_pb2_grpc

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from bench_daemon import wait_for_state  # noqa: E402
from bench_gateway import free_port  # noqa: E402
from bench_local import default_model, smol_home  # noqa: E402

TOPICS = ["a lighthouse", "a volcano", "a glacier", "a comet", "a library", "a river", "bees"]
WINDOW = 2048  # context per sequence, on every side


def prompt(round_: int, stream: int) -> str:
    """A fresh prompt per stream and round: no side answers from a cache of the last round."""
    return f"Story {round_}.{stream}: write a long story about {TOPICS[stream % len(TOPICS)]}."


@dataclass
class Run:
    """One side's N concurrent streams: wall time, tokens, and each stream's first token."""

    seconds: float
    tokens: int
    ttft_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


Stream = Callable[[str, int], Awaitable[tuple[float, int]]]  # (prompt, budget) -> (ttft, tokens)


async def concurrently(stream: Stream, round_: int, n: int, budget: int) -> Run:
    started = time.perf_counter()
    results = await asyncio.gather(*(stream(prompt(round_, i), budget) for i in range(n)))
    seconds = time.perf_counter() - started
    return Run(seconds, sum(t for _, t in results), [ttft for ttft, _ in results])


def grpc_stream(stub: wolf_pb2_grpc.WolfServiceStub) -> Stream:
    async def stream(text: str, budget: int) -> tuple[float, int]:
        params = pb.Parameters(max_tokens=budget, temperature=0.0)
        request = pb.WolfRequest(prompt=text, model="smol", parameters=params, no_cache=True)
        start = time.perf_counter()
        first, tokens = None, 0
        async for chunk in stub.StreamPrompt(request):
            if chunk.text and first is None:
                first = time.perf_counter()
            if chunk.done:
                tokens = chunk.response.tokens_out
        return ((first or time.perf_counter()) - start) * 1000, tokens

    return stream


def openai_stream(client: httpx.AsyncClient, base: str) -> Stream:
    """A streamed chat completion; tokens counted one per content event (both llama.cpp
    servers send one per token) unless the server reports usage."""

    async def stream(text: str, budget: int) -> tuple[float, int]:
        body = {
            "model": "smol",
            "messages": [{"role": "user", "content": text}],
            "max_tokens": budget,
            "temperature": 0.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        start = time.perf_counter()
        first, events, usage = None, 0, None
        async with client.stream("POST", f"{base}/v1/chat/completions", json=body) as reply:
            async for line in reply.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if event.get("usage"):
                    usage = event["usage"].get("completion_tokens")
                choices = event.get("choices") or []
                if choices and (choices[0].get("delta") or {}).get("content"):
                    events += 1
                    if first is None:
                        first = time.perf_counter()
        return ((first or time.perf_counter()) - start) * 1000, usage or events

    return stream


def in_process_stream(engine: object) -> Stream:
    from geri.engine import Engine
    from geri.types import Request

    assert isinstance(engine, Engine)

    async def stream(text: str, budget: int) -> tuple[float, int]:
        request = Request(text, model="smol", max_tokens=budget, temperature=0.0, use_cache=False)
        start = time.perf_counter()
        first, tokens = None, 0
        async with aclosing(engine.stream(request)) as chunks:
            async for chunk in chunks:
                if chunk.text and first is None:
                    first = time.perf_counter()
                if chunk.result is not None:
                    tokens = chunk.result.usage.output_tokens
        return ((first or time.perf_counter()) - start) * 1000, tokens

    return stream


def wait_http(base: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited while starting")
        try:
            if httpx.get(f"{base}/v1/models", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start")


def spread(values: list[float], digits: int = 2) -> str:
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}..{max(values):.{digits}f})"
    )


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a GGUF (the test model)")
    parser.add_argument("--llama-server", type=Path, default=None, help="llama-server binary")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--streams", default="1,2,4,8")
    args = parser.parse_args()
    model = args.model or default_model()
    counts = [int(n) for n in args.streams.split(",")]
    slots = max(counts)
    procs: list[subprocess.Popen[bytes]] = []
    log = subprocess.DEVNULL

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        smol_home(
            home,
            model,
            cache={"enabled": False},
            performance={"threads": args.threads, "parallel": slots, "context_size": WINDOW},
            daemon={"port": 0, "max_running": 64},
        )
        env = {**os.environ, "GERI_HOME": str(home)}
        daemon = subprocess.Popen([sys.executable, "-m", "geri", "daemon"], env=env, stderr=log)
        procs.append(daemon)
        servers: dict[str, str] = {}
        port = free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--port",
                 str(port), "--n_ctx", str(WINDOW), "--n_threads", str(args.threads),
                 "--n_threads_batch", str(args.threads),
                 # queue concurrent requests instead of cutting the one streaming
                 "--interrupt_requests", "False"],
                stdout=log, stderr=log,
            )
        )  # fmt: skip
        servers["llama_cpp.server"] = f"http://127.0.0.1:{port}"
        wait_http(servers["llama_cpp.server"], procs[-1], "llama_cpp.server")
        if args.llama_server:
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [str(args.llama_server), "-m", str(model), "--port", str(port),
                     "-t", str(args.threads), "-tb", str(args.threads),
                     "-c", str(WINDOW * slots), "--parallel", str(slots), "--no-webui"],
                    stdout=log, stderr=log,
                )
            )  # fmt: skip
            servers["llama-server"] = f"http://127.0.0.1:{port}"
            wait_http(servers["llama-server"], procs[-1], "llama-server")
        try:
            address = wait_for_state(home, daemon)
            await run(args, counts, address, servers, home)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)


async def run(
    args: argparse.Namespace, counts: list[int], address: str, servers: dict[str, str], home: Path
) -> None:
    from geri.engine import Engine
    from geri.settings import load_settings
    from geri.store import open_store

    settings = load_settings(home / "config" / "settings.json")
    async with (
        grpc.aio.insecure_channel(address) as channel,
        httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=64)) as client,
        Engine(settings, open_store(home / "in-process.db")) as engine,
    ):
        sides: dict[str, Stream] = {"geri": grpc_stream(wolf_pb2_grpc.WolfServiceStub(channel))}
        for name, base in servers.items():
            sides[name] = openai_stream(client, base)
        for stream in sides.values():  # warm up: load, first allocations
            await concurrently(stream, -1, max(counts), 8)
        single = in_process_stream(engine)
        await concurrently(single, -1, max(counts), 8)

        print(
            f"{args.rounds} rounds, {args.max_tokens} tokens per stream, {args.threads} threads, "
            f"greedy; median (lowest to highest)"
        )
        names = list(sides)
        for n in counts:
            runs: dict[str, list[Run]] = {name: [] for name in [*names, "in-process"]}
            for r in range(args.rounds):
                everyone = [*names, "in-process"]
                order = everyone[r % len(everyone) :] + everyone[: r % len(everyone)]
                for name in order:
                    stream = single if name == "in-process" else sides[name]
                    runs[name].append(await concurrently(stream, r, n, args.max_tokens))
            print(f"\nN = {n}")
            print(f"  {'side':<17} {'tokens/s':>22} {'TTFT p50 ms':>24} {'TTFT p99 ms':>12}")
            for name, taken in runs.items():
                if not taken:
                    continue
                ttfts = [t for run_ in taken for t in run_.ttft_ms]
                p50s = [statistics.median(run_.ttft_ms) for run_ in taken]
                print(
                    f"  {name:<17} {spread([x.rate for x in taken], 1):>22} "
                    f"{spread(p50s, 1):>24} {p99(ttfts):>12.1f}"
                )
            for peer in [p for p in runs if p != "geri" and runs[p]]:
                rates = [g.rate / o.rate for g, o in zip(runs["geri"], runs[peer], strict=True)]
                ttft = [
                    statistics.median(g.ttft_ms) / statistics.median(o.ttft_ms)
                    for g, o in zip(runs["geri"], runs[peer], strict=True)
                ]
                print(f"  geri / {peer:<15} tokens/s {spread(rates)}   TTFT p50 {spread(ttft)}")


if __name__ == "__main__":
    asyncio.run(main())
