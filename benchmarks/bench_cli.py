"""Start-up on the command line's hot paths, each against its yardstick, in paired rounds.

Every process is started fresh, as a user's shell starts it, with bytecode compiled (as an
installed package has it; an environment that sets PYTHONDONTWRITEBYTECODE would otherwise
compile geri's sources on every run of an editable install). Per round, each pair runs in turn
and the ratio is taken within the round:

  * cold `geri ask --no-daemon --no-cache` (process start, model load, a 64-token answer on
    stdout) against a minimal llama-cpp-python script doing the same: same model, prompt,
    threads and token budget, greedy;
  * `geri ask` answered from the response cache against `geri --version`;
  * `geri --help` against `llm --help` (Simon Willison's CLI, when `--llm PATH` is given or
    `llm` is on PATH).

Targets (issue #20): cold ask <= 1.1x the direct script, cache hit <= 1.2x `--version`,
`--help` <= 0.2x `llm --help`.

    python benchmarks/bench_cli.py --rounds 7
    python benchmarks/bench_cli.py --llm ~/llm-venv/bin/llm
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from bench_local import default_model, smol_home  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper."
THREADS = 2
WINDOW = 2048

DIRECT = """
import sys
from llama_cpp import Llama

llm = Llama(model_path=sys.argv[1], n_ctx={window}, n_threads={threads},
            n_threads_batch={threads}, flash_attn=True, verbose=False)
for chunk in llm.create_chat_completion(
    [{{"role": "user", "content": sys.argv[2]}}], max_tokens=int(sys.argv[3]),
    temperature=0.0, stream=True,
):
    sys.stdout.write(chunk["choices"][0]["delta"].get("content") or "")
    sys.stdout.flush()
"""


def timed(command: list[str], env: dict[str, str]) -> float:
    """Seconds from starting `command` to its exit (it must succeed)."""
    start = time.perf_counter()
    quiet = subprocess.DEVNULL
    subprocess.run(command, env=env, check=True, stdin=quiet, stdout=quiet, stderr=quiet)
    return time.perf_counter() - start


def spread(values: list[float], digits: int = 2) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} ({low:.{digits}f}..{high:.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a GGUF (the test model)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--llm", default=shutil.which("llm"), help="the llm CLI, for --help")
    args = parser.parse_args()
    model = args.model or default_model()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        smol_home(home, model, performance={"threads": THREADS, "context_size": WINDOW})
        env["GERI_HOME"] = str(home)
        script = home / "direct.py"
        script.write_text(DIRECT.format(window=WINDOW, threads=THREADS))
        geri = [sys.executable, "-m", "geri"]
        budget = str(args.max_tokens)
        ask = [*geri, "ask", PROMPT, "-t", "0", "--max-tokens", budget, "--no-daemon"]
        pairs: dict[str, tuple[list[str], list[str]]] = {
            "cold ask / direct script": (
                [*ask, "--no-cache"],
                [sys.executable, str(script), str(model), PROMPT, budget],
            ),
            "cache hit / --version": (ask, [*geri, "--version"]),
        }
        if args.llm:
            pairs["--help / llm --help"] = ([*geri, "--help"], [args.llm, "--help"])
        else:
            print("llm is not installed (pip install llm, then --llm PATH): --help not compared")
        for command in {tuple(c) for pair in pairs.values() for c in pair}:
            timed(list(command), env)  # warm up: bytecode, the page cache, the response cache

        seconds: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in pairs}
        for _ in range(args.rounds):
            for name, (ours, theirs) in pairs.items():
                seconds[name][0].append(timed(ours, env))
                seconds[name][1].append(timed(theirs, env))

    print(f"{args.rounds} paired rounds; median (lowest..highest)")
    print(f"  {'pair':<26} {'geri s':>20} {'yardstick s':>20} {'ratio':>20}")
    for name, (mine, yardstick) in seconds.items():
        ratios = [a / b for a, b in zip(mine, yardstick, strict=True)]
        print(f"  {name:<26} {spread(mine, 3):>20} {spread(yardstick, 3):>20} {spread(ratios):>20}")
    print("  targets: cold ask <= 1.1, cache hit <= 1.2, --help <= 0.2")


if __name__ == "__main__":
    main()
