"""The SSE reader against the specification's own examples, line endings, limits and any split.

Examples are from the HTML standard, section 9.2.6 "Interpreting an event stream"
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geri.providers.sse import Event, TooLarge, events


async def _chunks(data: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        yield data[start:cut]
        start = cut


def read(data: bytes, cuts: list[int] = (), **limits: int) -> list[Event]:  # type: ignore[assignment]
    async def collect() -> list[Event]:
        return [e async for e in events(_chunks(data, list(cuts)), **limits)]

    return asyncio.run(collect())


def datas(data: bytes) -> list[str]:
    return [e.data for e in read(data)]


def test_the_specs_stock_ticker_example() -> None:
    assert datas(b"data: YHOO\ndata: +2\ndata: 10\n\n") == ["YHOO\n+2\n10"]


def test_the_specs_comment_and_id_example() -> None:
    stream = (
        b": test stream\n\ndata: first event\nid: 1\n\n"
        b"data:second event\nid\n\ndata:  third event\n"
    )
    assert datas(stream + b"\n") == ["first event", "second event", " third event"]
    # geri's deviation: a stream that ends after a whole line delivers the event it holds
    assert datas(stream) == ["first event", "second event", " third event"]


def test_the_specs_empty_data_example() -> None:
    assert datas(b"data\n\ndata\ndata\n\ndata:") == ["", "\n"]  # the cut last line: dropped


def test_a_line_cut_off_by_the_end_of_the_stream_is_dropped() -> None:
    assert datas(b'data: {"a": 1}\n\ndata: {"b": ') == ['{"a": 1}']


def test_the_specs_space_after_colon_example() -> None:
    assert datas(b"data:test\n\ndata: test\n\n") == ["test", "test"]


def test_cr_lf_and_crlf_all_end_lines() -> None:
    assert datas(b"data: a\r\rdata: b\n\ndata: c\r\n\r\nevent: x\rdata: d\r\n\n") == [
        "a",
        "b",
        "c",
        "d",
    ]
    assert read(b"event: error\ndata: {}\n\n") == [Event("{}", "error")]


def test_unicode_line_separators_inside_data_do_not_end_a_line() -> None:
    text = 'data: {"text": "a\u2028b\u2029c\u0085d\x0be\x0cf\x1cg"}\n\n'
    assert datas(text.encode()) == [text[6:-2]]


def test_a_leading_byte_order_mark_is_skipped() -> None:
    assert datas(b"\xef\xbb\xbfdata: x\n\n") == ["x"]


def test_a_line_that_never_ends_is_refused_within_its_limit() -> None:
    with pytest.raises(TooLarge, match="one line"):
        read(b"data: " + b"x" * 5000, range(0, 5000, 7), max_line=1024)  # type: ignore[arg-type]


def test_an_endless_stream_is_refused_at_its_total_limit() -> None:
    with pytest.raises(TooLarge, match="stream passed"):
        read(b"data: x\n\n" * 200_000, range(0, 2_000_000, 4096), max_total=1024 * 1024)  # type: ignore[arg-type]


def test_many_data_lines_cannot_make_one_event_unbounded() -> None:
    with pytest.raises(TooLarge, match="one event"):
        read(b"data: xxxxxxxxxx\n" * 200, max_line=1024)


lines = st.lists(
    st.one_of(
        st.sampled_from(["", ": c", "event: e", "id: 1", "retry: 5", "data", "data:"]),
        st.text(max_size=20).map(lambda t: "data: " + t.replace("\r", "").replace("\n", "")),
    ),
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(lines, st.sampled_from(["\n", "\r", "\r\n"]), st.lists(st.integers(0, 500), max_size=30))
def test_how_the_stream_is_split_into_chunks_never_changes_the_events(
    body: list[str], ending: str, cuts: list[int]
) -> None:
    data = ending.join(body).encode() + ending.encode() * 2
    assert read(data, cuts) == read(data)
