"""Near-duplicate detection among RAG documents in near-linear time: MinHash with LSH banding.

Two documents are near duplicates when the Jaccard similarity of their word 3-gram sets is at
least `NEAR_DUPLICATE`. Comparing every pair costs n² set operations (a thousand large documents
took over a minute); instead each document gets a MinHash signature (`BANDS` x `ROWS` minima of
its hashed 3-grams under random multiply-shift hash functions, computed with numpy), and only
documents sharing a band of it become candidates, which are then checked exactly. With 16 bands
of 2 rows a pair at 0.8 similarity is a candidate with probability 1 - (1 - 0.8^2)^16 > 0.99999,
and distinct texts, which share almost no 3-grams, rarely are, so the exact checks stay few.
"""

from __future__ import annotations

import string
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

NEAR_DUPLICATE = 0.8
BANDS, ROWS = 16, 2
# words as `\w+` finds them, faster: ASCII punctuation becomes a separator
_SEPARATORS = str.maketrans({c: " " for c in string.punctuation if c != "_"})
CHUNK = 1 << 14  # grams hashed at once: 64 x 16384 x 8 bytes = 8 MiB at most


class NearDuplicates:
    """Documents added one by one, unless they nearly repeat one already added."""

    def __init__(self, seed: int = 1729) -> None:
        import numpy as np

        rng = np.random.default_rng(seed)
        top = np.iinfo(np.uint64).max
        self._a = rng.integers(1, top, size=BANDS * ROWS, dtype=np.uint64) | np.uint64(1)  # odd
        self._b = rng.integers(0, top, size=BANDS * ROWS, dtype=np.uint64)
        self._buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
        self._grams: list[NDArray[np.uint64]] = []
        self._unique: list[bool] = []  # whether `_grams[n]` is a set yet
        self._ids: list[str] = []

    def add(self, doc_id: str, text: str) -> str | None:
        """Add `text` as `doc_id`, unless it nearly repeats a document already added: then
        nothing is added and that document's id is returned."""
        import numpy as np

        grams, bands = self._sketch(text)
        mine: NDArray[np.uint64] | None = None  # the gram set, made only for a comparison
        seen: set[int] = set()
        for key in bands:
            for n in self._buckets.get(key, ()):
                if n not in seen:
                    seen.add(n)
                    mine = np.unique(grams) if mine is None else mine
                    if similar(mine, self._set(n)):
                        return self._ids[n]
        for key in bands:
            self._buckets[key].append(len(self._ids))
        self._grams.append(grams if mine is None else mine)
        self._unique.append(mine is not None)
        self._ids.append(doc_id)
        return None

    def _set(self, n: int) -> NDArray[np.uint64]:
        """Document `n`'s grams as a sorted set, made once."""
        import numpy as np

        if not self._unique[n]:
            self._grams[n], self._unique[n] = np.unique(self._grams[n]), True
        return self._grams[n]

    def _sketch(self, text: str) -> tuple[NDArray[np.uint64], list[tuple[int, bytes]]]:
        import numpy as np

        grams = shingle_hashes(text)
        signature = np.full(BANDS * ROWS, np.iinfo(np.uint64).max, dtype=np.uint64)
        for start in range(0, grams.size, CHUNK):  # bounded memory for a huge document
            values = grams[start : start + CHUNK][None, :]
            # multiply-shift hashing: (a·x + b) mod 2^64, wrapping, high bits kept
            hashed = (self._a[:, None] * values + self._b[:, None]) >> np.uint64(32)
            np.minimum(signature, hashed.min(axis=1), out=signature)
        rows = signature.reshape(BANDS, ROWS)
        return grams, [(band, rows[band].tobytes()) for band in range(BANDS)]


def shingle_hashes(text: str) -> NDArray[np.uint64]:
    """The hashes of `text`'s word 3-grams in order (case and spacing ignored); a text of
    fewer than three words is one gram."""
    import numpy as np

    words = text.lower().translate(_SEPARATORS).split()
    if len(words) < 3:
        return np.array([hash(" ".join(words)) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
    w = np.fromiter(map(hash, words), dtype=np.int64, count=len(words)).view(np.uint64)
    mixed = (w[:-2] * np.uint64(0x9E3779B97F4A7C15)) ^ (w[1:-1] * np.uint64(0xC2B2AE3D27D4EB4F))
    return mixed ^ w[2:]  # with repeats: `similar` makes them a set only when it must


def similar(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> bool:
    """Jaccard similarity of the gram sets `a` and `b` (sorted, unique) at least
    `NEAR_DUPLICATE`; their sizes rule most pairs out first."""
    import numpy as np

    if not a.size or not b.size:
        return False
    smaller, larger = sorted((a.size, b.size))
    if smaller / larger < NEAR_DUPLICATE:
        return False
    shared = np.intersect1d(a, b, assume_unique=True).size
    return bool(shared / (a.size + b.size - shared) >= NEAR_DUPLICATE)
