"""Ordering, de-duplication, citations and the sandboxed template."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geri.errors import ConfigError
from geri.prompt.context import citation, rank, render
from geri.types import Document

LONG = (
    "The warranty covers manufacturing defects for two years from the date of purchase. "
    "It does not cover accidental damage, water damage or normal wear. Claims need the "
    "original receipt and the serial number printed under the battery."
)


def test_most_relevant_first_unscored_after_in_their_order() -> None:
    docs = [
        Document("u1", "unscored one"),
        Document("low", "low score", 0.1),
        Document("high", "high score", 0.9),
        Document("u2", "unscored two"),
        Document("mid", "middle score", 0.5),
    ]
    kept, dropped = rank(docs)
    assert [d.id for d in kept] == ["high", "mid", "low", "u1", "u2"]
    assert dropped == []


def test_exact_and_near_duplicates_keep_the_more_relevant_copy() -> None:
    docs = [
        Document("copy", "  the WARRANTY covers " + LONG[20:], 0.3),
        Document("original", LONG, 0.8),
        Document("near", LONG.replace("two years", "2 years"), 0.5),
        Document("other", "Shipping takes three to five working days.", 0.4),
    ]
    kept, dropped = rank(docs)
    assert [d.id for d in kept] == ["original", "other"]
    assert {(u.id, u.reason) for u in dropped} == {
        ("near", "nearly the same as original"),
        ("copy", "same text as original"),
    }
    assert all(u.status == "duplicate" for u in dropped)


def test_citations_keep_source_and_title() -> None:
    assert citation(Document("d", "x", source="handbook.pdf", title="Leave")) == (
        "handbook.pdf — Leave"
    )
    assert citation(Document("d", "x", title="Leave")) == "Leave"
    assert citation(Document("d7", "x")) == "d7"


def test_the_default_template_numbers_and_cites() -> None:
    text = render(
        None,
        "What is covered?",
        [Document("w", LONG, source="warranty.md"), Document("s", "Shipping is free.")],
    )
    assert text.startswith("Answer the question using the documents below.")
    assert (
        f"[1] warranty.md\n{LONG}\n\n[2] s\nShipping is free.\n\nQuestion: What is covered?" in text
    )
    assert render(None, "Plain question?", []) == "Plain question?"


def test_a_template_from_the_settings_is_used() -> None:
    template = "{% for d in documents %}<{{ d.number }}:{{ d.id }}>{% endfor %} Q={{ question }}"
    assert render(template, "why?", [Document("a", "x"), Document("b", "y")]) == "<1:a><2:b> Q=why?"


@pytest.mark.parametrize(
    "template",
    [
        "{{ question.__class__.__mro__[1].__subclasses__() }}",
        "{{ documents.__class__.__init__.__globals__ }}",
        "{{ ''.__class__.__base__.__subclasses__() }}",
    ],
)
def test_templates_cannot_reach_python_internals(template: str) -> None:
    with pytest.raises(ConfigError, match="template"):
        render(template, "q", [Document("a", "x")])


def test_a_broken_template_is_a_settings_error() -> None:
    with pytest.raises(ConfigError, match=r"prompt\.template .* not a valid template"):
        render("{% for d in documents %}", "q", [])


@pytest.mark.parametrize("question", ["hi", " spaced \n", "multi\nline\n\n", "{{ not a tag }}"])
def test_without_documents_the_question_is_the_message_as_the_template_renders_it(
    question: str,
) -> None:
    from geri.prompt.context import DEFAULT_TEMPLATE

    assert render(None, question, ()) == question
    assert render(DEFAULT_TEMPLATE, question, ()) == question  # through jinja2, the same


@given(
    texts=st.lists(
        st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "eps"]), max_size=40).map(
            " ".join
        ),
        max_size=25,
    ),
    edits=st.integers(0, 3),
)
@settings(max_examples=60, deadline=None)
def test_near_duplicates_are_the_pairs_an_exact_comparison_finds(
    texts: list[str], edits: int
) -> None:
    """Whatever the texts (empty, short, repetitive, near copies), the fast check keeps what
    comparing every pair exactly keeps."""
    import re

    docs = [Document(f"d{n}", t) for n, t in enumerate(texts)]
    docs += [Document(f"copy{n}", t + " extra" * edits) for n, t in enumerate(texts[:5])]

    def grams(text: str) -> frozenset[str]:
        words = re.findall(r"\w+", text.lower())
        if len(words) < 3:
            return frozenset([" ".join(words)])
        return frozenset(" ".join(words[i : i + 3]) for i in range(len(words) - 2))

    expected: list[tuple[str, frozenset[str], str]] = []
    for doc in docs:
        norm = " ".join(doc.content.lower().split())
        mine = grams(norm)
        twin = any(
            norm == text
            or (
                mine
                and other
                and min(len(mine), len(other)) / max(len(mine), len(other)) >= 0.8
                and len(mine & other) / len(mine | other) >= 0.8
            )
            for _, other, text in expected
        )
        if not twin:
            expected.append((doc.id, mine, norm))
    kept, _ = rank(docs)
    assert [d.id for d in kept] == [doc_id for doc_id, _, _ in expected]
