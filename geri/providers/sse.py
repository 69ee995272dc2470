"""Server-sent events, read as the specification says, within limits.

The HTML standard's event-stream format (https://html.spec.whatwg.org/multipage/server-sent-events.html)
ends a line only at CR, LF or CR LF. Splitting like `str.splitlines` — at U+2028, U+2029, U+0085
and other separators, which JSON strings may carry raw — would cut an event in half, so lines are
split here on bytes, before decoding. An event is the `data` lines up to a blank line, joined
with LF; `event` names it, lines starting with a colon are comments, a single space after the
field's colon is dropped, `id` and `retry` are accepted and ignored (geri never reconnects),
other fields are ignored, and a leading byte-order mark is skipped.

One deviation: the standard drops an event the stream ends before its blank line. geri delivers
it when its last line was whole (ended by a line break), because real servers end that way:
Google's own recorded Gemini streams end a prompt-blocked reply with `data: {…}` and one CRLF.
A line cut off without its line break is still dropped, as it may be incomplete.

Limits: a line longer than `max_line` bytes, or a stream of more than `max_total` bytes, is
`TooLarge` — a server that sends one line forever, or an endless answer, cannot grow geri's
memory without bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

MAX_LINE = 4 * 1024 * 1024  # one event's line: far above any real token event
MAX_TOTAL = 64 * 1024 * 1024  # one whole streamed answer


@dataclass(frozen=True, slots=True)
class Event:
    data: str
    event: str = "message"


class TooLarge(Exception):
    """The stream broke a size limit; the message says which."""


async def lines(
    chunks: AsyncIterable[bytes], *, max_line: int = MAX_LINE, max_total: int = MAX_TOTAL
) -> AsyncIterator[str]:
    """The lines of a byte stream, split at CR, LF or CR LF only, each decoded as UTF-8."""
    buffer = bytearray()
    total = 0
    pending_cr = False  # the last chunk ended with CR: an LF first in the next belongs to it
    async for chunk in chunks:
        total += len(chunk)
        if total > max_total:
            raise TooLarge(f"the stream passed {max_total // (1024 * 1024)} MB")
        start = 0
        if pending_cr and chunk[:1] == b"\n":
            start = 1
        pending_cr = False
        size = len(chunk)
        while start < size:
            cr, lf = chunk.find(b"\r", start), chunk.find(b"\n", start)
            ends = [at for at in (cr, lf) if at >= 0]
            if not ends:
                buffer += chunk[start:]
                break
            end = min(ends)
            buffer += chunk[start:end]
            if len(buffer) > max_line:
                raise TooLarge(f"one line passed {max_line // 1024} KB")
            yield buffer.decode("utf-8", "replace")
            buffer.clear()
            if chunk[end : end + 1] == b"\r":
                if end + 1 == size:
                    pending_cr = True
                elif chunk[end + 1 : end + 2] == b"\n":
                    end += 1
            start = end + 1
        if len(buffer) > max_line:
            raise TooLarge(f"one line passed {max_line // 1024} KB")
    # a last line without its line break is dropped: it may have been cut off


async def events(
    chunks: AsyncIterable[bytes], *, max_line: int = MAX_LINE, max_total: int = MAX_TOTAL
) -> AsyncIterator[Event]:
    """The events of a byte stream (see the module's docstring for the rules)."""
    data: list[str] = []
    name = ""
    size = 0
    first = True
    async for line in lines(chunks, max_line=max_line, max_total=max_total):
        if first:
            line, first = line.removeprefix("\ufeff"), False
        if not line:
            if data:
                yield Event("\n".join(data), name or "message")
            data, name, size = [], "", 0
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            size += len(value)
            if size > max_line:
                raise TooLarge(f"one event passed {max_line // 1024} KB")
            data.append(value)
        elif field == "event":
            name = value
    if data:  # the stream ended after a whole line but before the blank one (see above)
        yield Event("\n".join(data), name or "message")
