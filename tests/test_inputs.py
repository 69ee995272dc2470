"""Hostile inputs at every path a user hands geri: devices, FIFOs, directories, endless and
huge stdin, invalid UTF-8. Each must end within seconds, in bounded memory, with a clear
message and a non-zero exit: no traceback, no hang.

The commands run as a user runs them, in a subprocess whose address space is capped, so an
input read whole (instead of up to its limit) fails the test with a MemoryError.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geri.errors import InputError
from geri.inputs import json_loads, read_capped, read_file

ROOT = Path(__file__).resolve().parent.parent
MEMORY_CAP = 1536 * 2**20  # far below the 3 GiB the endless inputs below would take


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def geri(
    home: Path,
    *args: str,
    stdin: int | None = subprocess.DEVNULL,
    feed: bytes | None = None,
    endless: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """`geri ARGS` with its memory capped and `feed` on its stdin: once, or `endless`ly until it
    stops reading (3 GiB at most, as `head -c 3G /dev/zero |` would send)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    env = {**os.environ, "GERI_HOME": str(home), "HF_HOME": str(home / "hf")}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "geri", *args],
            stdin=subprocess.PIPE if feed is not None else stdin,
            stdout=out,
            stderr=err,
            env=env,
            cwd=ROOT,
            preexec_fn=cap,
        )
        if feed is not None:
            times = 3 * 2**30 // len(feed) if endless else 1
            threading.Thread(target=_flood, args=(proc, feed, times), daemon=True).start()
        code = proc.wait(timeout=30)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, code, out.read(), err.read())


def _flood(proc: subprocess.Popen[bytes], block: bytes, times: int) -> None:
    assert proc.stdin is not None
    try:
        for _ in range(times):
            proc.stdin.write(block)
        proc.stdin.close()
    except (BrokenPipeError, OSError, ValueError):
        pass  # geri stopped reading, as it should


def refused(proc: subprocess.CompletedProcess[bytes], *needles: str) -> None:
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode in (1, 2), err
    assert "Traceback" not in err
    assert "MemoryError" not in err
    assert err.splitlines()[-1].startswith("Error: ")
    for needle in needles:
        assert needle in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("ask", "--rag", "/dev/zero", "q"), "character device"),
        (("ask", "--rag", "/dev/urandom", "q"), "character device"),
        (("ask", "--rag", "/proc/self/mem", "q"), "Cannot read"),
        (("vision", "/dev/zero"), "character device"),
        (("models", "add", "/dev/zero"), "character device"),
        (("install", "/dev/zero"), "character device"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else v,
)
def test_devices_are_refused_at_once(geri_home: Path, args: tuple[str, ...], needle: str) -> None:
    refused(geri(geri_home, *args), needle)


@pytest.mark.parametrize(
    "args",
    [("ask", "--rag", "{fifo}", "q"), ("vision", "{fifo}"), ("models", "add", "{fifo}")],
    ids=lambda v: v[0],
)
def test_a_named_pipe_never_blocks(geri_home: Path, fifo: Path, args: tuple[str, ...]) -> None:
    refused(geri(geri_home, *(a.format(fifo=fifo) for a in args)), "named pipe")


def test_a_fifo_as_the_settings_file_is_a_clear_error(geri_home: Path) -> None:
    (geri_home / "config").mkdir(parents=True)
    os.mkfifo(geri_home / "config" / "settings.json")
    refused(geri(geri_home, "config", "validate"), "named pipe")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("ask", "--rag", "-", "q"), "prompt.max_rag_bytes"),
        (("ask", "q"), "16 MiB limit"),
        (("keys", "set", "openai"), "limit"),
        (("vision", "-"), "vision.max_input_mb"),
    ],
    ids=["rag", "prompt", "key", "vision"],
)
def test_endless_stdin_stops_at_its_limit(
    geri_home: Path, args: tuple[str, ...], needle: str
) -> None:
    (geri_home / "config").mkdir(parents=True)
    (geri_home / "config" / "settings.json").write_text('{"vision": {"max_video_mb": 64}}')
    refused(geri(geri_home, *args, feed=b"\0" * 2**20, endless=True), needle, "larger than")


def test_an_endless_video_on_stdin_is_spooled_to_disk_and_stops_at_its_limit(
    geri_home: Path, tmp_path: Path
) -> None:
    (geri_home / "config").mkdir(parents=True)
    (geri_home / "config" / "settings.json").write_text('{"vision": {"max_video_mb": 64}}')
    mp4 = b"\0\0\0\x18ftypisom" + b"\0" * (2**20 - 12)  # an MP4 header, then more forever
    proc = geri(geri_home, "vision", "-", feed=mp4, endless=True)
    refused(proc, "The video on stdin", "vision.max_video_mb", "larger than")
    assert not list(Path(tempfile.gettempdir()).glob("geri-*.spool"))  # removed


def test_invalid_utf8_on_stdin_is_refused_like_in_a_file(geri_home: Path, tmp_path: Path) -> None:
    bad = b'["caf\xe9 au lait"]'
    (tmp_path / "docs.json").write_bytes(bad)
    for proc in (
        geri(geri_home, "ask", "--rag", "-", "q", feed=bad),
        geri(geri_home, "ask", "--rag", str(tmp_path / "docs.json"), "q"),
        geri(geri_home, "ask", "q", feed=b"caf\xe9"),
    ):
        refused(proc, "UTF-8")


def test_read_file_refuses_what_is_not_a_regular_file(tmp_path: Path, fifo: Path) -> None:
    for path, kind in (
        (tmp_path, "directory"),
        (fifo, "named pipe"),
        (Path("/dev/null"), "device"),
    ):
        with pytest.raises(InputError, match=kind):
            read_file(path, 10, "file")
    with pytest.raises(InputError, match="does not exist"):
        read_file(tmp_path / "missing", 10, "file")


@given(size=st.integers(0, 5000), limit=st.integers(0, 4096))
def test_read_capped_returns_all_or_refuses_beyond_the_limit(size: int, limit: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    if size <= limit:
        assert read_capped(io.BytesIO(data), limit, "x") == data
    else:
        with pytest.raises(InputError, match="larger than"):
            read_capped(io.BytesIO(data), limit, "x")


def test_read_capped_reads_no_further_than_one_chunk_past_the_limit() -> None:
    class Endless(io.RawIOBase):
        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            buffer[:] = b"\0" * len(buffer)
            self.served += len(buffer)
            return len(buffer)

    stream = Endless()
    with pytest.raises(InputError):
        read_capped(io.BufferedReader(stream), 10 * 2**20, "endless")
    assert stream.served <= 11 * 2**20


def test_an_argument_that_is_not_utf8_is_refused_clearly(geri_home: Path) -> None:
    for args in (("ask", "caf\udce9"), ("ask", "-s", "\udcff", "hello")):  # raw bytes E9, FF
        refused(geri(geri_home, *args), "not valid UTF-8")


# JSON from outside: any text at all, lone surrogates (U+D800..U+DFFF) included
ANY_TEXT = st.text(st.characters(codec=None, categories=None) | st.sampled_from("\ud800\udfff"))
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=20,
)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    return []


@given(ANY_JSON, st.booleans())
def test_json_from_outside_holds_only_text_that_can_be_written(value: object, raw: bool) -> None:
    """However a sender escapes it, every string geri reads from JSON encodes as UTF-8 (a lone
    surrogate becomes U+FFFD), and JSON without one reads exactly as `json.loads` reads it."""
    sent = json.dumps(value)  # ASCII: a surrogate travels as its \ud800 escape, as senders do
    read = json_loads(sent.encode() if raw else sent)
    for text in _strings(read):
        text.encode("utf-8")  # never raises
    if not any(0xD800 <= ord(c) <= 0xDFFF for s in _strings(value) for c in s):
        assert read == value


def test_json_nested_to_the_decoders_limit_is_mended_without_recursing() -> None:
    deep = "[" * 900 + '"\\ud800"' + "]" * 900
    read = json_loads(deep)
    for _ in range(900):
        read = read[0]
    assert read == "\ufffd"
    with pytest.raises(ValueError, match="nested too deeply"):
        json_loads("[" * 100_000 + "]" * 100_000)


def test_a_surrogate_pair_stays_one_character_and_an_escaped_backslash_stays_text() -> None:
    assert json_loads('"\\ud83d\\ude00"') == "\U0001f600"
    assert json_loads(b'"\\\\ud800"') == "\\ud800"  # a backslash, then "ud800"
