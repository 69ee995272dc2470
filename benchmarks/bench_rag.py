"""RAG de-duplication at the documented limits: `prompt.max_documents` documents that together
fill `prompt.max_rag_bytes`, against the pairwise check geri used before.

Side by side in one run, in paired rounds on the same generated documents (distinct texts, a
share of them near copies of others): `geri.prompt.context.rank` (MinHash with LSH banding)
and the pairwise Jaccard comparison of every new document with every kept one. Both must keep
the same documents; the medians and the spread of each are printed.

Target: the documented limits well under a second.

    python benchmarks/bench_rag.py
    python benchmarks/bench_rag.py --documents 200 --rounds 3 --pairwise-rounds 1
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

from geri.prompt.context import rank
from geri.settings import PromptSettings
from geri.types import Document

WORDS = [f"w{n}" for n in range(5000)]
T = TypeVar("T")


def documents(count: int, size: int, seed: int = 7) -> list[Document]:
    """`count` texts of about `size` bytes each; every fifth nearly repeats the one before."""
    rng = random.Random(seed)
    docs: list[Document] = []
    for n in range(count):
        if n % 5 == 4:
            words = docs[-1].content.split()
            words[rng.randrange(len(words))] = "changed"  # one word of thousands: a near copy
            text = " ".join(words)
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(size // 6))
        docs.append(Document(f"d{n}", text, score=rng.random()))
    return docs


def pairwise(docs: list[Document]) -> list[str]:
    """The previous algorithm: every document against every kept one."""

    def grams(text: str) -> frozenset[str]:
        words = re.findall(r"\w+", text.lower())
        return frozenset(" ".join(words[i : i + 3]) for i in range(len(words) - 2))

    ordered = sorted(docs, key=lambda d: (d.score is None, -(d.score or 0.0)))
    kept: list[tuple[str, frozenset[str]]] = []
    for doc in ordered:
        mine = grams(doc.content)
        if not any(len(mine & other) / len(mine | other) >= 0.8 for _, other in kept):
            kept.append((doc.id, mine))
    return [doc_id for doc_id, _ in kept]


def timed(work: Callable[[], T], rounds: int) -> tuple[list[float], T]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        out = work()
        times.append(time.perf_counter() - started)
    return times, out


def main() -> None:
    limits = PromptSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=limits.max_documents)
    parser.add_argument("--bytes", type=int, default=limits.max_rag_bytes)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pairwise-rounds", type=int, default=1, help="it is slow")
    args = parser.parse_args()
    docs = documents(args.documents, args.bytes // args.documents)
    total = sum(len(d.content) for d in docs)
    print(f"{len(docs)} documents, {total / 2**20:.1f} MiB in all")
    ours, (kept, dropped) = timed(lambda: rank(docs), args.rounds)
    theirs, kept_before = timed(lambda: pairwise(docs), args.pairwise_rounds)
    same = sorted(d.id for d in kept) == sorted(kept_before)
    print(f"kept {len(kept)}, dropped {len(dropped)} near copies; same as pairwise: {same}")
    for name, times in (("minhash", ours), ("pairwise", theirs)):
        spread = f"{min(times):.3f}-{max(times):.3f}"
        print(
            f"{name:>9}: p50 {statistics.median(times):.3f} s (spread {spread} s, n={len(times)})"
        )
    print(f"speed-up: {statistics.median(theirs) / statistics.median(ours):.0f}x")
    if not same:
        raise SystemExit("the two algorithms kept different documents")


if __name__ == "__main__":
    main()
