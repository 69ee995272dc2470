"""geri's token loop over `Llama.generate`: sampling, incremental detokenizing, stop strings
and the token budget.

geri runs its own loop instead of `create_chat_completion`: usage is exact in streams too, a
cancelled stream stops between two tokens, and the per-token work is constant (the library
re-decodes the whole answer at every token).
"""

from __future__ import annotations

import codecs
import functools
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from geri.types import ChatRequest, FinishReason

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar

TOP_K, MIN_P, REPEAT_PENALTY = 40, 0.05, 1.0


@functools.lru_cache(maxsize=32)
def grammar(schema: str) -> LlamaGrammar:
    """The llama.cpp grammar that admits only JSON valid against `schema` (JSON text): the
    model cannot sample a token that leaves it. Built once per schema."""
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_json_schema(schema, verbose=False)


def decode(
    llm: Llama,
    is_end: Callable[[int], bool],
    tokens: list[int],
    request: ChatRequest,
    stops: Sequence[str],
    budget: int,
    on_text: Callable[[str], object],
    cancel: threading.Event,
) -> tuple[int, FinishReason]:
    """The token loop: sample, detokenize incrementally, honour stop strings and the budget.

    Text that could be the start of a stop string is held back until it is known not to be,
    so a stop string never leaks into the output, even split across tokens; everything else
    is handed on at once.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending, produced = "", 0
    finish: FinishReason = "length"
    generator = llm.generate(
        tokens,
        top_k=TOP_K,
        top_p=request.top_p,
        min_p=MIN_P,
        temp=request.temperature,
        repeat_penalty=REPEAT_PENALTY,
        grammar=grammar(request.json_schema) if request.json_schema else None,
    )
    try:
        for token in generator if budget > 0 else ():
            if cancel.is_set():
                return produced, "cancelled"
            if is_end(token):
                finish = "stop"
                break
            produced += 1
            pending += decoder.decode(llm.detokenize([token]))
            cut = min((i for i in (pending.find(s) for s in stops) if i >= 0), default=-1)
            if cut >= 0:
                pending, finish = pending[:cut], "stop"
                break
            ready = len(pending) - stop_prefix_at_end(pending, stops)
            if ready > 0:
                on_text(pending[:ready])
                pending = pending[ready:]
            if produced >= budget:
                break
    finally:
        generator.close()
    pending += decoder.decode(b"", final=True)
    if pending:
        on_text(pending)
    return produced, finish


def stop_prefix_at_end(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of `text` that begins some stop string.

    >>> stop_prefix_at_end("Hello <|im", ["<|im_end|>"])
    4
    """
    longest = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:k]):
                longest = k
                break
    return longest
