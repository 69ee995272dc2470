"""The one redaction boundary: every text that leaves geri passes through here.

geri promises that an API key never appears in anything it prints, sends, stores or logs — even
when an upstream quotes the key back, in an error body, a stream event, a reply of the wrong
shape or the answer itself. Rather than trusting each place that forwards upstream text to
remember, every exit calls this module: the CLI's renderer (stdout and stderr), the engine's
answer stream and results, the gRPC status details and trailers, the request log, the response
cache, notices and webhooks, and the log handlers. Errors are cleaned when they are made
(`GeriError.__init__`), so even a message that is cut to length afterwards was clean first.

What is masked:
- every key geri has seen in this process (`remember`: the key store reports each key it reads
  from the environment or the keyring, and each key set) becomes its mask, `sk-…1234`, which
  shows too little of the key (seven characters) to be of use;
- anything shaped like a key (`LOOKS_SECRET`) and the user's own `logging.redact` patterns
  become `[redacted]`.

A stream needs more care than a string: a hostile upstream can send a key one character per
event. `StreamRedactor` therefore holds back the end of the text, unredacted, for as long as it
could still be the start of a key — the start of a known key, or a word that begins like one of
the key shapes (`sk-`, `AIza`, `hf_`, `Bearer`) — and redacts and lets it out once it cannot.
Ordinary text passes piece for piece. (The user's own patterns are applied to each piece and to
the whole answer where it is stored; the stream guarantee is for keys.)
"""

from __future__ import annotations

import re
import string
import threading
from collections.abc import Iterable

LOOKS_SECRET = (
    r"\bsk-[A-Za-z0-9_-]{16,}",  # OpenAI, Anthropic
    r"\bAIza[0-9A-Za-z_-]{30,}",  # Google
    r"\bhf_[A-Za-z0-9]{20,}",  # Hugging Face
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}",
)
REDACTED = "[redacted]"
MIN_SECRET = 8  # shorter "keys" are not keys; masking them would mangle ordinary text
# the end of a stream that may still grow into a key: a run of key characters, or "Bearer "
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "._~+/=-")
_BEARER_TAIL = re.compile(r"(?i)\bbearer\s*\Z")
_HEADS = ("sk-", "aiza", "hf_", "bearer")  # how the shapes in LOOKS_SECRET begin
_LONGEST_HEAD = max(map(len, _HEADS))
_HOLD_AT_MOST = 1024  # a run longer than any key is let out, all but this much
_CONTEXT = 64  # of text already let out, kept so shapes are matched as in the whole text

_lock = threading.Lock()
_known: set[str] = set()
_by_length: tuple[str, ...] = ()  # _known, longest first
_patterns: list[re.Pattern[str]] = [re.compile(p) for p in LOOKS_SECRET]
_extra: set[str] = set()


def _scoped(pattern: str) -> str:
    """`pattern` as a group of an alternation, its leading inline flags (`(?i)`) scoped to it."""
    flagged = re.fullmatch(r"\(\?([a-z]+)\)(.*)", pattern, re.DOTALL)
    return f"(?{flagged[1]}:{flagged[2]})" if flagged else f"(?:{pattern})"


# matches where any built-in shape matches: almost no text has one, and one search rules them
# all out where replacing ran each pattern over the text in turn
_ANY_SHAPE = re.compile("|".join(map(_scoped, LOOKS_SECRET)))


def mask(key: str) -> str:
    """A recognisable but useless form of `key`.

    >>> mask("sk-proj-abcdefghijklmnop1234")
    'sk-…1234'
    """
    return f"{key[:3]}…{key[-4:]}" if len(key) >= 16 else "…" * 3


def remember(*keys: str | None) -> None:
    """Mask these keys in everything from now on (the key store calls this as it reads)."""
    global _by_length
    fresh = {k for key in keys if key and len(k := key.strip()) >= MIN_SECRET} - _known
    if fresh:
        with _lock:
            _known.update(fresh)
            _by_length = tuple(sorted(_known, key=len, reverse=True))


def forget_keys() -> None:
    """Stop masking the keys remembered so far (for tests, which each start afresh)."""
    global _by_length
    with _lock:
        _known.clear()
        _by_length = ()


def add_patterns(patterns: Iterable[str]) -> None:
    """Also replace what these regular expressions match (the `logging.redact` setting)."""
    fresh = set(patterns) - _extra
    if fresh:
        with _lock:
            _extra.update(fresh)
            _patterns.extend(re.compile(p) for p in sorted(fresh))


def known() -> list[str]:
    """Every key remembered so far, longest first (so a key containing another is masked whole)."""
    return list(_by_length)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every known key (and `secrets`) masked and every key-shaped string replaced.

    >>> redact("your key sk-abcdefghijklmnopqrstu was refused")
    'your key [redacted] was refused'
    """
    if not text:
        return text
    return _replace_patterns(_mask_known(text, secrets))


def _mask_known(text: str, secrets: Iterable[str | None] = ()) -> str:
    ordered = _by_length
    extra = {s for s in secrets if s and len(s) >= MIN_SECRET and s not in _known}
    if extra:
        ordered = tuple(sorted({*extra, *ordered}, key=len, reverse=True))
    for secret in ordered:
        if secret in text:
            text = text.replace(secret, mask(secret))
    return text


def _replace_patterns(text: str, before: str = "") -> str:
    """`text` with the key shapes replaced; `before` is what came just before it in a stream
    (already let out), so a shape's word boundary is judged as in the whole text."""
    patterns = _patterns if _ANY_SHAPE.search(before + text) else _patterns[len(LOOKS_SECRET) :]
    if not patterns:
        return text
    if not before:
        for pattern in patterns:
            text = pattern.sub(REDACTED, text)
        return text
    joined, offset = before + text, len(before)
    for pattern in patterns:
        joined = pattern.sub(lambda m: REDACTED if m.start() >= offset else m.group(0), joined)
    return joined[offset:]


class StreamRedactor:
    """`redact` for text that arrives in pieces: a key split across pieces is masked too.

    `feed` returns what can be let out now; `flush` returns the rest when the stream ends.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._before = ""  # the end of what was let out: context for word boundaries

    def feed(self, piece: str) -> str:
        if not piece:
            return ""
        text = _mask_known(self._pending + piece)
        end = self._safe_end(text)
        self._pending = text[end:]
        out = _replace_patterns(text[:end], self._before)
        self._before = (self._before + text[:end])[-_CONTEXT:]
        return out

    def flush(self) -> str:
        text, self._pending = _replace_patterns(_mask_known(self._pending), self._before), ""
        return text

    @staticmethod
    def _safe_end(text: str) -> int:
        """Where the part of `text` that cannot become (part of) a key ends."""
        end = run = len(text)
        floor = max(0, run - _HOLD_AT_MOST)
        while run > floor and text[run - 1] in _KEY_CHARS:
            run -= 1
        for at in range(run, len(text)):  # a key shape may start where a word starts
            if at == run or not (text[at - 1].isalnum() or text[at - 1] == "_"):
                tail = text[at : at + _LONGEST_HEAD].lower()
                if any(head.startswith(tail) or tail.startswith(head) for head in _HEADS):
                    end = at
                    break
        bearer = _BEARER_TAIL.search(text, max(0, run - 64), run)
        if bearer:
            end = min(end, bearer.start())
        for secret in _known:  # a tail that is the start of a known key
            at = text.find(secret[0], max(0, len(text) - len(secret) + 1))
            while 0 <= at < end:
                if secret.startswith(text[at:]):
                    end = at
                    break
                at = text.find(secret[0], at + 1)
        # what is held may complete a key shape begun just before it ("Bearer 0=" + "Bearer"):
        # hold that beginning too, back to where no shape can reach across
        while end < len(text):
            start = end
            while start > floor and text[start - 1] in _KEY_CHARS:
                start -= 1
            bearer = _BEARER_TAIL.search(text, max(0, start - 64), start)
            if bearer:
                start = bearer.start()
            if start == end:
                break
            end = start
        return end
