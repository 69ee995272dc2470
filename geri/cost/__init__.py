"""Money: what a request cost, in integer micro-dollars (never floats)."""

from __future__ import annotations

from geri.types import ModelInfo, Usage

MICROS_PER_DOLLAR = 1_000_000
TOKENS_PER_PRICE_UNIT = 1_000_000


def request_cost(usage: Usage, info: ModelInfo) -> int:
    """Cost of `usage` on `info`, rounded up to the next micro-dollar so spend never hides.

    >>> request_cost(Usage(1000, 500), ModelInfo("m", "p", "s", input_price=2_500_000,
    ...              output_price=10_000_000))
    7500
    """
    numerator = usage.input_tokens * info.input_price + usage.output_tokens * info.output_price
    return -(-numerator // TOKENS_PER_PRICE_UNIT)
