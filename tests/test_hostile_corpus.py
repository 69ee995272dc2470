"""A hostile corpus, generated here, thrown at the real `geri` command: every case must end with
a clear message and exit code 0, 1 or 2 — no traceback, no hang, no signal, bounded memory.

The corpus: RAG files of every wrong shape and type, random mutations of a valid one, devices,
FIFOs, directories and oversized files; settings files nested 100,000 deep, of wrong types and
mutated at random; images and videos that are truncated, enormous, of refused formats or noise;
model files cut short, mutated, and lying about their hyperparameters; arguments out of range
or not UTF-8; and stdin or stdout closed, or stdout on a full disk. Each case runs as its own
process under a 2 GiB address-space cap, with a time limit; the summary line gives the figures
(cases, tracebacks, hangs, signals, peak RSS).
"""

from __future__ import annotations

import json
import os
import random
import resource
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MEMORY_CAP = 2 * 2**30
TIME_LIMIT = 60.0
SEED = 20261125


@dataclass
class Case:
    name: str
    args: tuple[str, ...]
    settings: bytes | None = None  # settings.json, raw
    stdin: bytes | None = None
    streams: str | None = None  # "stdin closed", "stdout closed" or "stdout full"


@dataclass
class Outcome:
    case: Case
    code: int | None
    stderr: str
    seconds: float
    peak_kib: int
    problems: list[str] = field(default_factory=list)


def run_case(case: Case, home: Path) -> Outcome:
    home.mkdir(parents=True, exist_ok=True)
    if case.settings is not None:
        (home / "config").mkdir(exist_ok=True)
        (home / "config" / "settings.json").write_bytes(case.settings)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
        if case.streams == "stdin closed":
            os.close(0)
        elif case.streams == "stdout closed":
            os.close(1)
        elif case.streams == "stdout full":
            os.dup2(os.open("/dev/full", os.O_WRONLY), 1)

    env = {**os.environ, "GERI_HOME": str(home), "HF_HOME": str(home / "hf")}
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        env.pop(name, None)
    err_path = home / "stderr.txt"
    started = time.monotonic()
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "geri", *case.args],
            stdin=subprocess.PIPE if case.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            preexec_fn=cap,
        )
        if case.stdin is not None:
            assert proc.stdin is not None
            try:
                proc.stdin.write(case.stdin)
                proc.stdin.close()
            except OSError:
                pass
        deadline = started + TIME_LIMIT
        status = usage = None
        while time.monotonic() < deadline:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        else:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            status = None
    proc.returncode = 0  # reaped here: keep Popen from waiting again
    stderr = err_path.read_text(errors="replace")
    code = os.waitstatus_to_exitcode(status) if status is not None else None
    peak = usage.ru_maxrss if usage else 0
    outcome = Outcome(case, code, stderr, time.monotonic() - started, peak)
    if code is None:
        outcome.problems.append("hang")
    elif code < 0:
        outcome.problems.append(f"signal {-code}")
    elif code not in (0, 1, 2):
        outcome.problems.append(f"exit {code}")
    if "Traceback" in stderr:
        outcome.problems.append("traceback")
    if code and "Error" not in stderr and "Usage:" not in stderr:
        outcome.problems.append("no message")
    return outcome


def rag_cases(tmp: Path, rng: random.Random) -> Iterator[Case]:
    valid = [
        {"id": "a", "content": "Paris is the capital of France.", "score": 0.9},
        {"id": "b", "content": "Berlin is the capital of Germany.", "source": "wiki"},
    ]
    shapes: list[object] = [
        [],
        {},
        5,
        "text",
        None,
        [1, 2],
        [{"content": 5}],
        [{"id": 5, "content": "x"}],
        [{"content": "x", "score": "high"}],
        [{"content": ""}],
        [{"id": "a"}],
        [{"id": "a", "content": "x"}, {"id": "a", "content": "y"}],
        {"documents": "x"},
        {"documents": [None]},
        [{"content": "x", "metadata": [1, {"a": None}]}],
        [{"content": "x" * 100_000, "id": "y" * 10_000}],
        [{"content": "x"}] * 5000,
    ]
    raw: list[bytes] = [json.dumps(s).encode() for s in shapes] + [
        b"[" * 100_000 + b"]" * 100_000,
        b'[{"content": "x", "score": 1e400}]',
        b'[{"content": "x", "score": NaN}]',
        b'[{"content": "caf\xe9"}]',
        b"\xef\xbb\xbf" + json.dumps(valid).encode(),
        json.dumps(valid).encode("utf-16"),
        json.dumps(valid).encode()[:-7],
        b"",
        b"\x00" * 1000,
    ]
    raw += [rng.randbytes(rng.randint(1, 4096)) for _ in range(8)]
    base = bytearray(json.dumps(valid).encode())
    for _ in range(20):
        mutated = bytearray(base)
        for _ in range(rng.randint(1, 5)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        raw.append(bytes(mutated))
    for n, data in enumerate(raw):
        path = tmp / f"rag-{n}.json"
        path.write_bytes(data)
        yield Case(f"rag file {n}", ("ask", "--rag", str(path), "q"))
    fifo = tmp / "rag.fifo"
    os.mkfifo(fifo)
    big = tmp / "big.json"
    with open(big, "wb") as file:
        file.truncate(3 * 2**30)  # sparse: 3 GiB of zeros
    for special in ("/dev/zero", "/dev/urandom", "/proc/self/mem", str(fifo), str(tmp), str(big)):
        yield Case(f"rag {special}", ("ask", "--rag", special, "q"))
    yield Case("rag missing", ("ask", "--rag", str(tmp / "nope.json"), "q"))
    yield Case("rag stdin invalid utf-8", ("ask", "--rag", "-", "q"), stdin=b'["caf\xe9"]')
    yield Case("rag stdin endless-ish", ("ask", "--rag", "-", "q"), stdin=b"[" * 2**20)


def settings_cases(rng: random.Random) -> Iterator[Case]:
    wrong: list[object] = [
        [],
        5,
        None,
        "text",
        {"models": 5},
        {"models": [5]},
        {"models": [{"kind": "local"}]},
        {"network": {"read_timeout": -1}},
        {"network": {"max_attempts": 10**9}},
        {"budgets": {"timezone": "Mars/Olympus"}},
        {"logging": {"level": "LOUD"}},
        {
            "prompt": {
                "template": "{% for i in range(99999) %}{% for j in range(99999) %}x"
                "{% endfor %}{% endfor %}"
            }
        },
        {"daemon": {"port": 99999}},
        {"vision": {"max_pixels": -5}},
        {"unknown": {"x": 1}},
        {"default_model": 5},
        {"performance": {"threads": "many"}},
    ]
    raw = [json.dumps(w).encode() for w in wrong] + [
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b"[" * 100_000,
        b'{"models": "caf\xe9"}',
        b"{" + b" " * (2 * 2**20) + b"}",
        b"",
        b"\xff\xfe{}",
    ]
    valid = {"network": {"max_attempts": 2}, "cache": {"enabled": True}}
    base = bytearray(json.dumps(valid).encode())
    for _ in range(15):
        mutated = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        raw.append(bytes(mutated))
    for n, data in enumerate(raw):
        yield Case(f"settings {n} (ask)", ("ask", "q"), settings=data)
        if n % 3 == 0:
            yield Case(f"settings {n} (config show)", ("config", "show"), settings=data)


def media_cases(tmp: Path, rng: random.Random) -> Iterator[Case]:
    png_sig = b"\x89PNG\r\n\x1a\n"
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    files = {
        "truncated.png": png_sig + b"\x00\x00\x00\rIHDR" + ihdr[:5],
        "huge.png": png_sig + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0",
        "figure.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
        "empty.png": b"",
        "noise.jpg": rng.randbytes(5000),
        "junk.mp4": b"\0\0\0\x18ftypisom" + rng.randbytes(4000),
        "junk.webm": b"\x1aE\xdf\xa3" + rng.randbytes(4000),
        "text.png": b"just some text, not an image",
        "gif.gif": b"GIF89a" + struct.pack("<HH", 65535, 65535) + rng.randbytes(100),
    }
    for name, data in files.items():
        path = tmp / name
        path.write_bytes(data)
        yield Case(f"vision {name}", ("vision", str(path), "-m", "gpt-4o"))
    fifo = tmp / "media.fifo"
    os.mkfifo(fifo)
    for special in ("/dev/zero", str(fifo), str(tmp)):
        yield Case(f"vision {special}", ("vision", special, "-m", "gpt-4o"))
    yield Case("vision stdin noise", ("vision", "-", "-m", "gpt-4o"), stdin=rng.randbytes(9000))


def gguf_cases(tmp: Path, model: Path, rng: random.Random) -> Iterator[Case]:
    head = model.read_bytes()[: 2**20]
    for n, size in enumerate([0, 3, 4, 8, 16, 24, 100, 1000, 10_000, 2**20]):
        path = tmp / f"cut-{n}.gguf"
        path.write_bytes(head[:size])
        yield Case(f"gguf cut at {size}", ("models", "add", str(path)))
    for n in range(12):
        mutated = bytearray(head[:65536])
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(4, len(mutated))] = rng.randrange(256)
        path = tmp / f"flip-{n}.gguf"
        path.write_bytes(bytes(mutated))
        yield Case(f"gguf header mutation {n}", ("models", "add", str(path)))
    for special in ("/dev/zero", str(tmp)):
        yield Case(f"gguf {special}", ("models", "add", special))


def argument_cases(tmp: Path) -> Iterator[Case]:
    notes = tmp / "notes.txt"
    notes.write_text("keep me")
    for args in (
        ("daemon", "--port", "99999"),
        ("daemon", "--port", "-1"),
        ("daemon", "--socket", str(tmp)),
        ("daemon", "--socket", str(notes)),
        ("ask", ""),
        ("ask", "--max-tokens", "0", "q"),
        ("ask", "--temperature", "nan", "q"),
        ("ask", "--temperature", "1e400", "q"),
        ("ask", "q", "-m", "no-such-model"),
        ("ask", "caf\udce9"),
        ("budget", "set", "daily", "-5"),
        ("budget", "set", "daily", "abc"),
        ("budget", "set", "hourly", "5"),
        ("keys", "set", "nonexistent"),
        ("models", "remove", "nothing"),
        ("vision", str(tmp / "nope.png")),
        ("logs", "--limit", "-1"),
        ("install", "--model", "no-such-entry", "--dry-run"),
    ):
        yield Case(f"args {' '.join(args)}", args)
    yield Case("prompt stdin invalid utf-8", ("ask",), stdin=b"caf\xe9 au lait")


def stream_cases() -> Iterator[Case]:
    """Standard streams that cannot be used: stdin closed (`<&-`), stdout closed (`>&-`) or on
    a full disk (`>/dev/full`)."""
    reading: list[tuple[str, ...]] = [
        ("keys", "set", "openai"),
        ("ask", "q"),
        ("vision", "-", "-m", "gpt-4o"),
    ]
    for args in reading:
        yield Case(f"stdin closed: {' '.join(args)}", args, streams="stdin closed")
    writing: list[tuple[str, ...]] = [
        ("--version",),
        ("--help",),
        ("ask", "--help"),
        ("models", "list"),
        ("install", "--list"),
        ("logs", "--json"),
        ("keys", "list"),
        ("config", "show"),
        ("route", "q", "--json"),
    ]
    for args in writing:
        for streams in ("stdout closed", "stdout full"):
            yield Case(f"{streams}: {' '.join(args)}", args, streams=streams)


def test_the_hostile_corpus_ends_cleanly_every_time(tmp_path: Path, smollm_path: Path) -> None:
    rng = random.Random(SEED)
    files = tmp_path / "files"
    files.mkdir()
    cases = [
        *rag_cases(files, rng),
        *settings_cases(rng),
        *media_cases(files, rng),
        *gguf_cases(files, smollm_path, rng),
        *argument_cases(files),
        *stream_cases(),
    ]
    run: Callable[[tuple[int, Case]], Outcome] = lambda item: run_case(  # noqa: E731
        item[1], tmp_path / f"home-{item[0]}"
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(run, enumerate(cases)))
    bad = [(o.case.name, o.code, o.problems, o.stderr[-300:]) for o in outcomes if o.problems]
    count = lambda kind: sum(kind in p for o in outcomes for p in o.problems)  # noqa: E731
    peak = max(o.peak_kib for o in outcomes)
    slowest = max(outcomes, key=lambda o: o.seconds)
    print(
        f"\nhostile corpus: {len(outcomes)} cases, {count('traceback')} tracebacks, "
        f"{count('hang')} hangs, {count('signal')} signals, peak RSS {peak / 1024:.0f} MiB, "
        f"slowest {slowest.seconds:.1f} s ({slowest.case.name})"
    )
    assert len(outcomes) >= 150
    assert bad == [], bad[:5]


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GERI_STORE", raising=False)
