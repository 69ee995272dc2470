"""geri's own log: human or JSON lines, a trace id per request, and no secrets, ever.

`configure` sets up the `geri` logger once per process: a rotating file in the log directory
and stderr, each at its own level, which per-component levels from the settings override.
Every record passes two filters on its way out: `TraceFilter` stamps it with the trace id of
the request being served (a context variable the engine sets, and the daemon takes from the
caller's `x-geri-trace-id` metadata, so one id follows a request across processes), and
`RedactFilter` passes the message, its arguments, extra fields and tracebacks alike through
`geri.redaction` (every API key geri knows, anything that looks like one, and the user's own
patterns).
"""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import os
import stat
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from geri.redaction import add_patterns, redact

if TYPE_CHECKING:
    from geri.settings import Logging

TRACE_ID: ContextVar[str | None] = ContextVar("geri_trace_id", default=None)
TRACE_METADATA = "x-geri-trace-id"
CALL_EVENT = "call"  # the `event` field of the one line logged per finished call
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "trace_id",
    "_redacted",
    "_formatted",
}


def new_trace_id() -> str:
    return uuid.uuid4().hex[:16]


class TraceFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id = TRACE_ID.get() or "-"
        return True


class RedactFilter(logging.Filter):
    """Masks `secrets()` (read at each record: keys appear as they are used) and `patterns`."""

    def __init__(self, secrets: Callable[[], Iterable[str]], patterns: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = secrets
        add_patterns(patterns)

    def clean(self, text: str, secrets: Iterable[str] | None = None) -> str:
        return redact(text, self._secrets() if secrets is None else secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True  # already cleaned for another handler
        secrets = list(self._secrets())
        record.msg, record.args = self.clean(record.getMessage(), secrets), None
        if record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = self.clean(trace, secrets), None
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, self.clean(value, secrets))
        record._redacted = True
        return True


class LevelFilter(logging.Filter):
    """A handler's level, overridden per component (the longest matching logger name wins)."""

    def __init__(self, default: str, levels: Mapping[str, str]) -> None:
        super().__init__()
        self.default = logging.getLevelName(default)
        self.levels = sorted(
            ((name, logging.getLevelName(level)) for name, level in levels.items()),
            key=lambda item: -len(item[0]),
        )

    def filter(self, record: logging.LogRecord) -> bool:
        for name, level in self.levels:
            if record.name == name or record.name.startswith(name + "."):
                return bool(record.levelno >= level)
        return bool(record.levelno >= self.default)


class _Once(logging.Formatter):
    """Formats a record once for every handler that shares this formatter (the console and the
    file; the file's rollover check formats it yet again to measure it)."""

    def format(self, record: logging.LogRecord) -> str:
        done: dict[int, str] = record.__dict__.setdefault("_formatted", {})
        text = done.get(id(self))
        if text is None:
            text = done[id(self)] = self.render(record)
        return text

    def render(self, record: logging.LogRecord) -> str:
        return super().format(record)


class JsonFormatter(_Once):
    """One JSON object per record: time, level, logger, message, trace id and extra fields."""

    def render(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": getattr(record, "trace_id", "-"),
        }
        data.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, default=str, ensure_ascii=False)


class RotatingFile(logging.handlers.RotatingFileHandler):
    """The standard rotating file, without its two `stat` calls per record: whether the log
    is a regular file (anything else, such as /dev/null, is never rotated) is learnt when the
    file is opened, and it is opened anew after each rollover."""

    _regular = True

    def _open(self) -> io.TextIOWrapper:
        stream = super()._open()
        self._regular = stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
        return stream

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        if self.stream is None:  # delayed, or closed by a rollover
            self.stream = self._open()
        stream = self.stream
        if not self._regular or self.maxBytes <= 0:
            return False
        stream.seek(0, os.SEEK_END)  # other processes append to the same file
        return stream.tell() + len(self.format(record)) + 1 >= self.maxBytes


HUMAN = "%(asctime)s %(levelname)-7s %(name)s [%(trace_id)s] %(message)s"


def configure(
    settings: Logging,
    log_dir: Path,
    *,
    secrets: Callable[[], Iterable[str]],
    console_level: str | None = None,
    echo_calls: bool = True,
) -> None:
    """Set up the `geri` logger for this process (again, if called again).

    `echo_calls=False` keeps the line logged per finished call off stderr (it still goes to
    the file): the CLI shows its call's outcome itself, and a failure would be said twice.
    """
    root = logging.getLogger("geri")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.propagate = False
    formatter: logging.Formatter = JsonFormatter() if settings.format == "json" else _Once(HUMAN)
    filters = (TraceFilter(), RedactFilter(secrets, settings.redact))
    console = logging.StreamHandler()
    console.addFilter(LevelFilter(console_level or settings.console_level, settings.levels))
    if not echo_calls:
        console.addFilter(lambda record: getattr(record, "event", None) != CALL_EVENT)
    console.setFormatter(formatter)
    handlers: list[logging.Handler] = [console]
    if settings.file:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            file = RotatingFile(
                log_dir / "geri.log",
                maxBytes=settings.max_bytes,
                backupCount=settings.backups,
                encoding="utf-8",
            )
        except OSError as exc:
            sys.stderr.write(f"geri: cannot write the log in {log_dir}: {exc.strerror}\n")
        else:
            file.addFilter(LevelFilter(settings.level, settings.levels))
            file.setFormatter(formatter)
            handlers.append(file)
    for handler in handlers:
        for f in filters:
            handler.addFilter(f)
        root.addHandler(handler)
    # records no handler would keep are not even created
    levels = [console_level or settings.console_level, settings.level, *settings.levels.values()]
    root.setLevel(min(logging.getLevelName(level) for level in levels))
