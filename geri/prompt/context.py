"""Turning documents into context: order, de-duplication, citations and the template.

Documents are ordered by relevance (score, highest first; unscored ones keep their order after
the scored). Exact duplicates (same text once case and spacing are ignored) and near duplicates
(word 3-gram overlap of 80 % or more, found in near-linear time: `geri.prompt.dedup`) are
dropped, keeping the more relevant copy. Each kept
document gets a citation, `[1] source — title`, and the user message is rendered from a Jinja
template in a sandboxed environment: a template from the settings can format, never run code.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from geri.errors import ConfigError
from geri.prompt.dedup import NearDuplicates
from geri.types import Document, DocumentUse

DEFAULT_TEMPLATE = """\
{% if documents %}Answer the question using the documents below. \
Cite them by number, like [1]. If they do not contain the answer, say so.

{% for doc in documents %}[{{ doc.number }}] {{ doc.citation }}
{{ doc.content }}

{% endfor %}Question: {% endif %}{{ question }}"""


@dataclass(frozen=True, slots=True)
class Numbered:
    """A document as the template sees it."""

    number: int
    id: str
    content: str
    citation: str
    source: str | None
    title: str | None
    score: float | None


def rank(documents: Sequence[Document]) -> tuple[list[Document], list[DocumentUse]]:
    """Documents by relevance without duplicates, and the duplicates that were dropped."""
    ordered = sorted(
        documents, key=lambda d: (d.score is None, -(d.score or 0.0))
    )  # stable: ties and unscored keep the input order
    kept: list[Document] = []
    if len(ordered) < 2:  # nothing to repeat: spare the hashing set-up (every plain request)
        return ordered, []
    near = NearDuplicates()
    exact: dict[str, str] = {}
    dropped: list[DocumentUse] = []
    for doc in ordered:
        norm = " ".join(doc.content.lower().split())
        if norm in exact:
            dropped.append(DocumentUse(doc.id, "duplicate", reason=f"same text as {exact[norm]}"))
            continue
        twin = near.add(doc.id, norm)
        if twin is not None:
            dropped.append(DocumentUse(doc.id, "duplicate", reason=f"nearly the same as {twin}"))
            continue
        exact[norm] = doc.id
        kept.append(doc)
    return kept, dropped


def citation(doc: Document) -> str:
    """`source — title`, whichever of them the document has, else its id.

    >>> citation(Document("d1", "text", source="handbook.pdf", title="Leave"))
    'handbook.pdf — Leave'
    """
    parts = [p for p in (doc.source, doc.title) if p]
    return " — ".join(parts) if parts else doc.id


def render(template: str | None, question: str, documents: Sequence[Document]) -> str:
    """The user message: `question`, with `documents` numbered and cited through the template."""
    if template is None and not documents:
        return question  # what the default template renders, without loading jinja2
    from geri.prompt.templates import render as bounded_render

    numbered = [
        Numbered(n, d.id, d.content, citation(d), d.source, d.title, d.score)
        for n, d in enumerate(documents, start=1)
    ]
    compiled = _compile(template or DEFAULT_TEMPLATE)
    try:
        return bounded_render(compiled, question=question, documents=numbered)
    except Exception as exc:  # jinja2 raises many types; a user's template may do anything
        raise ConfigError(f"The prompt template in the settings failed: {exc}") from exc


@functools.lru_cache(maxsize=16)
def _compile(template: str):  # type: ignore[no-untyped-def]
    from jinja2 import TemplateSyntaxError

    from geri.prompt.templates import BoundedSandbox

    env = BoundedSandbox(autoescape=False, keep_trailing_newline=False)
    try:
        return env.from_string(template)
    except TemplateSyntaxError as exc:
        raise ConfigError(
            f"prompt.template in the settings is not a valid template: {exc.message} "
            f"(line {exc.lineno})."
        ) from exc
