"""The redaction boundary: keys masked in whole texts and in streams however they are split."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from geri import redaction
from geri.errors import IncompleteAnswer, ProviderError
from geri.redaction import StreamRedactor, redact

KEY = "sk-canary-7f3a9c2e5b1d4f60aa"
ODD_KEY = "weird key!with#chars:0123"  # a keyring may hold anything: spaces, punctuation
KEYS = (KEY, ODD_KEY)


def leaks(text: str, key: str) -> list[str]:
    """Every 8-character slice of `key` found in `text`."""
    return [key[i : i + 8] for i in range(len(key) - 7) if key[i : i + 8] in text]


def streamed(text: str, cuts: list[int]) -> str:
    redactor, out, start = StreamRedactor(), [], 0
    for cut in [*sorted({c % (len(text) + 1) for c in cuts}), len(text)]:
        out.append(redactor.feed(text[start:cut]))
        start = cut
    return "".join(out) + redactor.flush()


texts = st.lists(
    st.one_of(
        st.text(max_size=12),
        st.sampled_from(
            [*KEYS, "Bearer ", "bearer\n", "BEARER", "sk-", "AIza", "hf_", " ", ".", "x", "0", "="]
        ),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=1000, deadline=None)
@given(texts, st.lists(st.integers(min_value=0, max_value=400), max_size=40))
def test_a_stream_is_redacted_exactly_as_the_whole_text(text: str, cuts: list[int]) -> None:
    redaction.remember(*KEYS)
    assert streamed(text, cuts) == redact(text)
    for key in KEYS:
        assert not leaks(redact(text), key)


def test_a_key_sent_one_character_at_a_time_is_masked() -> None:
    redaction.remember(KEY)
    text = f"here it is:{KEY}, and again Bearer {KEY}."
    assert (
        streamed(text, list(range(len(text)))) == "here it is:sk-…60aa, and again Bearer sk-…60aa."
    )


def test_key_shapes_are_replaced_even_when_unknown() -> None:
    text = (
        "a sk-proj-ABCDEFGHIJKLMNOPQRSTUV, AIzaSyA12345678901234567890123456789012, "
        "hf_abcdefghijklmnopqrstuvwxyz and Authorization: Bearer abc.def-ghi_jkl"
    )
    assert redact(text) == ("a [redacted], [redacted], [redacted] and Authorization: [redacted]")


def test_ordinary_text_streams_piece_for_piece() -> None:
    redactor = StreamRedactor()
    pieces = ["The", " capital", " of", " France", " is", " Paris", "."]
    assert [redactor.feed(p) for p in pieces] == pieces
    assert redactor.flush() == ""


def test_an_errors_message_is_clean_when_made_so_cutting_it_later_leaks_nothing() -> None:
    redaction.remember(KEY)
    error = ProviderError(f"upstream said: {KEY}")
    assert str(error) == "upstream said: sk-…60aa"
    assert not leaks(str(error)[:25], KEY)
    assert IncompleteAnswer("cut", partial=f"so far {KEY}").partial == "so far sk-…60aa"


def test_a_run_of_key_characters_longer_than_any_key_is_let_out() -> None:
    redactor = StreamRedactor()
    out = redactor.feed("x" * 5000)
    assert len(out) >= 5000 - 1024
    assert out + redactor.flush() == "x" * 5000


def test_short_values_are_not_treated_as_keys() -> None:
    redaction.remember("abc", "", None, "  ")  # e.g. an empty or placeholder variable
    assert redact("abc abc") == "abc abc"


@settings(max_examples=1000, deadline=None)
@given(texts, texts)
def test_the_one_search_that_skips_clean_text_replaces_as_every_shape_in_turn(
    before: str, text: str
) -> None:
    """Text with no key shape skips the replacements after one combined search; any text
    comes out as running each built-in shape over it in turn would make it."""
    import re

    joined = before + text
    expected = joined
    for shape in redaction.LOOKS_SECRET:
        expected = re.sub(
            shape, lambda m: redaction.REDACTED if m.start() >= len(before) else m[0], expected
        )
    assert before + redaction._replace_patterns(text, before) == expected
