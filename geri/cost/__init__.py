"""Money: what a request costs, in integer micro-dollars (never floats).

Prices are micro-dollars per million tokens, carried by each `ModelInfo` (the shipped table in
`providers/cloud_models.json`, overridden per model by the settings' `prices`). The cost of a
finished call comes from the usage the provider reported; before the call, `projected_cost`
bounds it from the fitted prompt and the most tokens the answer may take, and that bound is what
the budget ledger (`geri.cost.ledger`) reserves.

Reported usage is not taken on trust (`charge`): an upstream may report more tokens than it could
have used, or figures that are no counts at all. What a call is charged is bounded by what geri
sent (the prompt, plus `input_margin` for the provider's own template and tokenizer) and the
`max_tokens` it allowed — the same bound the engine reserves — and anything beyond is an
anomaly, charged at the higher of the reservation and the bounded figure. So a call never
settles above its reservation, nor below zero, and the limit holds however the calls interleave.
Where no usage was reported, it is estimated from the prompt and the text that arrived, never
taken as zero.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def input_margin(prompt_tokens: int) -> int:
    """How many more input tokens than geri counted a provider may honestly bill: its chat
    template's tokens beyond the overhead geri counts, and a tokenizer geri could only estimate
    (10 % and 8 tokens).

    >>> input_margin(1000)
    108
    """
    return prompt_tokens // 10 + 8


@dataclass(frozen=True, slots=True)
class Charge:
    """What a finished call is charged, and why, when it is not what the provider reported."""

    usage: Usage
    cost_micros: int
    anomaly: str | None = None  # what in the reported usage was not believed
    estimated: bool = False  # usage (in part) counted by geri: the provider reported none


def charge(
    reported: Usage | None,
    info: ModelInfo,
    *,
    prompt_tokens: int,
    max_tokens: int,
    produced_tokens: int,
    reserved_micros: int,
) -> Charge:
    """The charge for a call that sent `prompt_tokens`, allowed `max_tokens` and received text
    of about `produced_tokens` (a high estimate), against `reserved_micros` held for it.

    >>> gpt = ModelInfo("m", "p", "s", input_price=1_000_000, output_price=1_000_000)
    >>> billed = charge(Usage(10, 5_000_000), gpt, prompt_tokens=10, max_tokens=100,
    ...                 produced_tokens=40, reserved_micros=110)
    >>> billed.usage.output_tokens, billed.cost_micros, billed.anomaly
    (100, 110, '5000000 output tokens reported where at most 100 were allowed')
    """
    reported = reported or Usage()
    produced = min(produced_tokens, max_tokens)
    estimated = False
    input_tokens, output_tokens = reported.input_tokens, reported.output_tokens
    if produced and not output_tokens:  # text arrived, but no count for it
        output_tokens, estimated = produced, True
    if (produced or output_tokens) and not input_tokens:
        input_tokens, estimated = prompt_tokens, True
    if not (info.input_price or info.output_price):  # free (local, LAN): nothing to guard
        usage = Usage(
            input_tokens,
            output_tokens,
            reasoning_tokens=reported.reasoning_tokens,
            estimated=estimated,
        )
        return Charge(usage, 0, None, estimated)
    bound = Usage(prompt_tokens + input_margin(prompt_tokens), max_tokens)
    problems = [reported.anomaly] if reported.anomaly else []
    if input_tokens > bound.input_tokens:
        problems.append(
            f"{input_tokens} input tokens reported where at most {bound.input_tokens} were sent"
        )
    if output_tokens > bound.output_tokens:
        problems.append(
            f"{output_tokens} output tokens reported where at most {max_tokens} were allowed"
        )
    output = max(0, min(output_tokens, bound.output_tokens))
    usage = Usage(
        max(0, min(input_tokens, bound.input_tokens)),
        output,
        reasoning_tokens=min(reported.reasoning_tokens, output),
        estimated=estimated,
    )
    cost = request_cost(usage, info)
    if problems:
        cost = max(cost, reserved_micros)
    return Charge(usage, cost, "; ".join(problems) or None, estimated)


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
