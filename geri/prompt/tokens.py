"""Token estimates for models whose tokenizer geri does not have locally.

The estimate errs high on purpose: it is used to check a prompt fits a context window and to
reserve budget, where guessing low is the costly mistake. BPE tokenizers of current models
average about four bytes of English per token; three bytes per token over-counts English by
about a third and stays above the true count for code and most other languages.
"""

from __future__ import annotations

BYTES_PER_TOKEN = 3


def estimate_tokens(text: str) -> int:
    """A high estimate of the tokens `text` takes.

    >>> estimate_tokens("Hello, world!")
    5
    """
    return -(-len(text.encode("utf-8")) // BYTES_PER_TOKEN) if text else 0
