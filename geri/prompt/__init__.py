"""Building the prompt a model sees, and fitting it into the model's context window.

The messages are: the system prompt, then one user message rendered from the template with the
RAG documents (most relevant first, cited) and the question. The whole prompt plus a response
reserve (`prompt.response_reserve`, 20 % of the window by default) must fit the window. When it
does not, the least relevant documents are dropped first, then the last one kept is cut at a
sentence boundary. Nothing happens silently: the `ContextReport` says which documents went in,
which were trimmed, dropped or duplicates, and what the token budget was. A question that does
not fit even alone raises `QuestionTooLong`, which the engine may answer with a larger model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from geri.errors import QuestionTooLong
from geri.prompt.context import citation, rank, render
from geri.prompt.tokens import TokenCounter
from geri.settings import PromptSettings
from geri.types import ContextReport, Document, DocumentUse, Message, Request

SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
TRIM_MARK = " …"
# tokens a document adds beyond its citation and text: "[n] ", line breaks (a high guess)
DOC_OVERHEAD = 8


@dataclass(frozen=True, slots=True)
class Prompt:
    messages: tuple[Message, ...]
    report: ContextReport


def build_messages(request: Request, documents: Sequence[Document] = ()) -> tuple[Message, ...]:
    """The chat messages for `request` with `documents` as context, using the default template.

    >>> [m.role for m in build_messages(Request("Hi", system="Be brief."))]
    ['system', 'user']
    """
    return _messages(request, documents, None)


def _messages(
    request: Request, documents: Sequence[Document], template: str | None
) -> tuple[Message, ...]:
    messages: list[Message] = []
    if request.system:
        messages.append(Message("system", request.system))
    messages.extend(request.history)
    user = render(template, request.prompt, documents)
    messages.append(Message("user", user, images=request.images))
    return tuple(messages)


async def build_prompt(
    request: Request, model: str, window: int, counter: TokenCounter, settings: PromptSettings
) -> Prompt:
    """Messages for `request` that fit `window` tokens with the response reserve kept free."""
    reserve = math.ceil(window * settings.response_reserve)
    budget = window - reserve
    template = settings.template

    async def size(docs: Sequence[Document]) -> int:
        return await counter.messages(_messages(request, docs, template))

    base = await size(())
    if base > budget:
        raise QuestionTooLong(
            f"The prompt alone takes {base} tokens, more than model {model!r} allows for a "
            f"prompt ({window} tokens minus {reserve} kept for the answer). Shorten it, or "
            "choose a model with a larger context window with --model.",
            base,
        )
    ranked, duplicates = rank(request.documents)
    chosen: list[Document] = []
    running = base  # tokens of the prompt with `chosen`, exact or a little high
    for doc in ranked:
        cost = await _cost(counter, doc)
        if chosen and running + cost + DOC_OVERHEAD <= budget:
            running += cost + DOC_OVERHEAD  # surely fits: no need to count the whole prompt
            chosen.append(doc)
            continue
        exact = await size([*chosen, doc])
        if exact <= budget:
            running = exact
            chosen.append(doc)
            continue
        cut = await _trim(doc, chosen, size, budget)
        if cut is not None:
            chosen.append(cut)
        break
    while chosen and await size(chosen) > budget:  # the running estimate erred low: rare
        chosen.pop()
    messages = _messages(request, chosen, template)
    report = ContextReport(
        window=window,
        reserve=reserve,
        prompt_tokens=await counter.messages(messages),
        documents=await _uses(counter, request.documents, chosen, duplicates),
    )
    return Prompt(messages, report)


async def _uses(
    counter: TokenCounter,
    documents: Sequence[Document],
    chosen: Sequence[Document],
    duplicates: Sequence[DocumentUse],
) -> tuple[DocumentUse, ...]:
    """Each document's fate, in the order the user gave them."""
    kept = {d.id: d for d in chosen}
    twins = {u.id: u for u in duplicates}
    uses = []
    for doc in documents:
        if doc.id in twins:
            uses.append(twins[doc.id])
        elif doc.id not in kept:
            uses.append(DocumentUse(doc.id, "dropped", reason="no room left in the window"))
        elif kept[doc.id].content != doc.content:
            tokens = await _cost(counter, kept[doc.id])
            uses.append(DocumentUse(doc.id, "trimmed", tokens, "cut to fit the window"))
        else:
            uses.append(DocumentUse(doc.id, "included", await _cost(counter, doc)))
    return tuple(uses)


async def _trim(doc: Document, chosen: list[Document], size, budget: int) -> Document | None:  # type: ignore[no-untyped-def]
    """The longest sentence-aligned start of `doc` that still fits, or None if not one sentence."""
    sentences = SENTENCE_END.split(doc.content.strip())
    low, high = 0, len(sentences) - 1  # a whole document that fit would not be here
    while low < high:
        mid = (low + high + 1) // 2
        shorter = replace(doc, content=" ".join(sentences[:mid]) + TRIM_MARK)
        if await size([*chosen, shorter]) <= budget:
            low = mid
        else:
            high = mid - 1
    return replace(doc, content=" ".join(sentences[:low]) + TRIM_MARK) if low else None


async def _cost(counter: TokenCounter, doc: Document) -> int:
    return await counter.text(f"{citation(doc)}\n{doc.content}")


__all__ = ["Prompt", "QuestionTooLong", "build_messages", "build_prompt"]
