"""Money: what a request costs, in integer micro-dollars (never floats).

Prices are micro-dollars per million tokens, carried by each `ModelInfo` (the shipped table in
`providers/cloud_models.json`, overridden per model by the settings' `prices`). The cost of a
finished call comes from the usage the provider reported; before the call, `projected_cost`
bounds it from the fitted prompt and the most tokens the answer may take, and that bound is what
the budget ledger (`geri.cost.ledger`) reserves.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

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


def projected_cost(prompt_tokens: int, max_tokens: int, info: ModelInfo) -> int:
    """The most a call can cost: the whole prompt in, and `max_tokens` out."""
    return request_cost(Usage(prompt_tokens, max_tokens), info)


def dollars(micros: int) -> str:
    """Micro-dollars for people: '$4.20', or '$0.0035' below a cent.

    >>> dollars(4_200_000), dollars(3_500), dollars(0)
    ('$4.20', '$0.0035', '$0.00')
    """
    if 0 < abs(micros) < 10_000:
        return f"${Decimal(micros) / MICROS_PER_DOLLAR:.4f}"
    return f"${Decimal(micros) / MICROS_PER_DOLLAR:.2f}"


def dollars_to_micros(amount: Decimal | float | str) -> int:
    """US dollars as integer micro-dollars, rounded half up: the one rule for every amount a
    user or a price table gives (a float goes through its shortest decimal form).

    >>> dollars_to_micros("12.50"), dollars_to_micros(0.0000005), dollars_to_micros(0.1)
    (12500000, 1, 100000)
    """
    exact = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    return int((exact * MICROS_PER_DOLLAR).to_integral_value(ROUND_HALF_UP))
