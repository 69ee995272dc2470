"""Jinja templates from outside geri (a model's chat template, `prompt.template`), rendered in a
sandbox with a budget of work.

Jinja's sandbox stops a template from running code, but not from working forever: nested
`range(99999)` loops, or `"x" * 10**9`, pass its checks. Here every render gets a budget: the
items all `range` calls may produce together, the size a `*` or `**` may build, and the length
of the output. Exceeding any is `TemplateTooCostly`, which callers turn into their own clear
error; a template that stays within it renders exactly as under plain Jinja.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_ITEMS = 200_000  # range items per render, all loops together
MAX_OUTPUT = 64 * 2**20  # characters a render may produce (RAG context included)


class TemplateTooCostly(Exception):
    """A template needed more work than a render is allowed."""


@dataclass(slots=True)
class _Budget:
    items: int
    output: int


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("budget", default=None)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with `range`, `*` and `**` charged to the render's budget."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _counted_range

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            _spend(abs(right), f"an exponent of {right}")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    _spend(len(seq) * max(times, 0), f"repeating a sequence {times} times")
        return super().call_binop(context, operator, left, right)


def render(template: Any, limit: int = MAX_OUTPUT, **context: Any) -> str:
    """`template` (compiled by a `BoundedSandbox`) rendered with `context`, within budget."""
    budget = _Budget(MAX_ITEMS, limit)
    token = _BUDGET.set(budget)
    try:
        parts = []
        for part in template.generate(**context):
            budget.output -= len(part)
            if budget.output < 0:
                raise TemplateTooCostly(f"it produced more than {limit:,} characters")
            parts.append(part)
        return "".join(parts)
    finally:
        _BUDGET.reset(token)


def _counted_range(*args: int) -> range:
    numbers = range(*args)
    _spend(len(numbers), f"range{args}")
    return numbers


def _spend(amount: int, what: str) -> None:
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.items -= amount
    if budget.items < 0:
        raise TemplateTooCostly(f"{what} takes it past the {MAX_ITEMS:,} steps a render may take")
