"""Reading what users hand geri: files and stdin, bounded in size and never blocking on open;
and JSON from anyone else (`json_loads`).

Only regular files are read (stdin excepted): a device such as /dev/zero never ends, a FIFO
makes `open` wait for a writer that may never come, and both report a size of 0, so a limit
checked against `st_size` guards nothing. So a file is opened with O_NONBLOCK (a FIFO then opens
at once and is refused), checked to be a regular file, and read with the byte limit enforced
while reading; stdin is read the same way. Every failure is an `InputError` that names the
input, what is wrong and, for a limit, the setting that raises it.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from geri.errors import InputError

CHUNK = 1 << 16
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def open_regular(path: Path, what: str) -> BinaryIO:
    """`path` opened for reading, refused unless it is a regular file (never waits on a FIFO).

    `what` names the input in messages, e.g. "RAG file".
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist.") from None
    except PermissionError:
        raise InputError(f"Cannot read {what} {path}: permission denied.") from None
    except OSError as exc:
        raise InputError(f"Cannot open {what} {path}: {exc.strerror}.") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise InputError(f"{what} {path} is {kind}; give a regular file.")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_file(path: Path, limit: int, what: str, setting: str | None = None) -> bytes:
    """The bytes of the regular file `path`, refused beyond `limit` bytes.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     _ = f.write(b"hello") and f.flush()
    ...     read_file(Path(f.name), 10, "file")
    b'hello'
    """
    where = f" ({setting} in the settings)" if setting else ""
    with open_regular(path, what) as file:
        size = os.fstat(file.fileno()).st_size
        if size > limit:  # refused before a byte is read
            raise InputError(f"{what} {path} is {size:,} bytes; the limit is {limit:,}{where}.")
        return read_capped(file, limit, f"{what} {path}", setting)


def chunks(
    stream: BinaryIO, limit: int, what: str, setting: str | None = None, *, already: int = 0
) -> Iterator[bytes]:
    """`stream` in chunks, refused (`InputError`) as soon as it passes `limit` bytes, counting
    `already` bytes read before; a read error is an `InputError` too."""
    total = already
    try:
        while chunk := stream.read(min(CHUNK, limit + 1 - total)):
            total += len(chunk)
            if total > limit:
                where = f" ({setting} in the settings)" if setting else ""
                raise InputError(f"{what} is larger than the {_size(limit)} limit{where}.")
            yield chunk
    except OSError as exc:
        raise InputError(f"Cannot read {what}: {exc.strerror or exc}.") from None


def read_capped(stream: BinaryIO, limit: int, what: str, setting: str | None = None) -> bytes:
    """Everything `stream` holds, read in chunks and refused as soon as it passes `limit`, so
    an endless or huge input costs at most `limit` bytes of memory."""
    return b"".join(chunks(stream, limit, what, setting))


def spool(stream: BinaryIO, head: bytes, limit: int, what: str, setting: str | None = None) -> Path:
    """`head` and the rest of `stream` copied to a temporary file, refused past `limit` bytes:
    a large input (a video on stdin) costs disk, not memory. The file is removed when the
    process exits."""
    descriptor, name = tempfile.mkstemp(prefix="geri-", suffix=".spool")
    path = Path(name)
    atexit.register(path.unlink, missing_ok=True)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(head)
            for chunk in chunks(stream, limit, what, setting, already=len(head)):
                out.write(chunk)
    except (InputError, OSError) as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, InputError):
            raise
        raise InputError(f"Cannot write {what} to {path}: {exc.strerror or exc}.") from None
    return path


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:g} {unit}"
    return f"{nbytes} bytes"


def json_loads(text: str | bytes | bytearray) -> Any:
    """`json.loads` for JSON from outside (a client, an upstream, a peer, a file).

    Nesting too deep for it is a `ValueError`, like any other bad JSON: CPython's decoder
    recurses once per level and raises `RecursionError` past about a thousand (so does the
    encoder), which no `except ValueError` catches, so a hostile body of a few kilobytes of
    brackets would escape every handler of bad JSON.

    A lone surrogate (`"\\ud800"`: valid JSON, but no character) becomes U+FFFD, as bytes that
    are not UTF-8 do when decoded with replacement: left in, it fails far from here, wherever
    the text is first encoded (a tokenizer, the request log, stdout).
    """
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    if isinstance(text, str):
        escaped = _SURROGATE_ESCAPE.search(text) is not None
    else:
        escaped = _SURROGATE_ESCAPE_BYTES.search(text) is not None
    return _mended(data) if escaped else data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _mended(data: Any) -> Any:
    """`data` with every lone surrogate in its strings and keys replaced by U+FFFD (a pair
    has already been joined into one character by the decoder). Iterative: `data` may be
    nested as deep as the decoder allows."""

    def mend(value: Any) -> Any:
        if isinstance(value, str):
            return _LONE_SURROGATE.sub("\ufffd", value)
        if isinstance(value, dict):
            return {mend(k): v for k, v in value.items()}
        return value

    root = [mend(data)]
    pending: list[tuple[Any, Any]] = [(root, 0)]
    while pending:
        container, key = pending.pop()
        value = container[key] = mend(container[key])
        if isinstance(value, list):
            pending.extend((value, n) for n in range(len(value)))
        elif isinstance(value, dict):
            pending.extend((value, k) for k in value)
    return root[0]
