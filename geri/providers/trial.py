"""A model file's trial load, in a child process, before geri loads it into its own.

geri reads a GGUF file's header and tensor table itself (`geri.providers.gguf`), which catches
the mistakes it knows of. But llama.cpp can still refuse a file that passes, or abort the whole
process on it (a failed assertion is SIGABRT) — and in a daemon that would be every client's
outage. So a file is first loaded by a throwaway child process (`python -m
geri.providers.trial FILE`), which loads it and decodes one token; only a file that survived
that is registered (`geri models add`) or loaded in-process.

The trial costs about a second for a small model and is run once per file: the verdict is kept
in the cache directory, keyed by the file's path, size and modification time, so a file that is
replaced is tried again. A trial that takes longer than `TIMEOUT` is not cached as a verdict.
`check` keeps, with the verdict, the header facts a load needs (architecture, chat template),
so loading a file already checked does not parse its header again (tens of milliseconds for a
large vocabulary, on every cold `geri ask`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from geri.errors import ModelLoadError
from geri.paths import Paths

TIMEOUT = 600.0  # seconds: loading a large file from a slow disk
VERDICTS = "model-trials.json"
MAX_VERDICTS = 512
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Facts:
    """What loading a checked file needs from its header."""

    architecture: str
    chat_template: str | None


def check(path: Path, *, cache_dir: Path | None = None) -> Facts:
    """`path`'s header checked (`read_gguf`) and the file tried (`verify`), or both taken from
    the cache when this version of the file passed them before."""
    from geri.providers.gguf import read_gguf

    key, store = _key(path), _store(cache_dir)
    entry = _verdicts(store).get(key)
    if isinstance(entry, dict) and entry.get("verdict") == "ok":
        template = entry.get("chat_template")
        kept = template if isinstance(template, str) else None
        return Facts(str(entry.get("architecture")), kept)
    header = read_gguf(path)
    verify(path, cache_dir=cache_dir)
    facts = Facts(header.architecture, header.chat_template)
    _remember(store, key, {"verdict": "ok", "architecture": facts.architecture,
                           "chat_template": facts.chat_template})  # fmt: skip
    return facts


def verify(path: Path, *, cache_dir: Path | None = None) -> None:
    """Return if llama.cpp can load and run `path`; else raise `ModelLoadError` saying why."""
    key, store = _key(path), _store(cache_dir)
    entry = _verdicts(store).get(key)
    verdict = entry.get("verdict") if isinstance(entry, dict) else entry
    if verdict is None:
        verdict, final = _trial(path)
        if final:
            _remember(store, key, verdict)
    if verdict != "ok":
        raise ModelLoadError(
            f"llama.cpp cannot use {path}: {verdict}. geri will not load it; check that the "
            "file is a complete model for an architecture this llama-cpp-python supports "
            "('pip install -U llama-cpp-python' for newer ones)."
        )


def _trial(path: Path) -> tuple[str, bool]:
    """The child's verdict on `path`, and whether it is final (worth remembering)."""
    env = {**os.environ, "PYTHONFAULTHANDLER": "0"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "geri.providers.trial", str(path)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return f"loading it took over {TIMEOUT:g} s", False
    if done.returncode == 0 and done.stdout.strip().endswith("ok"):
        return "ok", True
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return f"llama.cpp crashed loading it ({name})", True
    # llama.cpp's own words are on stderr ("error loading model: … has wrong shape …")
    said = [
        " ".join(line.split(": error loading model: ", 1)[1].split())
        for line in done.stderr.splitlines()
        if ": error loading model: " in line
    ]
    said += [
        line.removeprefix("refused: ") for line in done.stdout.splitlines() if "refused: " in line
    ]
    return (said[0] if said else "it failed to load")[:300], True


def _key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _store(cache_dir: Path | None) -> Path:
    return (cache_dir or Paths.from_env().cache_dir) / VERDICTS


Entry = str | dict[str, str | None]  # a verdict, or a passed file's verdict and header facts


def _verdicts(store: Path) -> dict[str, Entry]:
    try:
        with open(store, "rb") as file:
            data = json.loads(file.read(16 * 1024 * 1024))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str | dict)}


def _remember(store: Path, key: str, verdict: Entry) -> None:
    with _lock:
        verdicts = _verdicts(store)
        verdicts[key] = verdict
        kept = dict(list(verdicts.items())[-MAX_VERDICTS:])
        try:
            store.parent.mkdir(parents=True, exist_ok=True)
            temporary = store.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(kept))
            temporary.replace(store)  # atomic: a concurrent reader sees the old or the new
        except OSError:
            pass  # no cache: the trial runs again next time


def _child(path: str) -> int:  # pragma: no cover - runs in the child process
    """Load `path` and decode one token; print 'ok', or 'refused: why'."""
    import llama_cpp

    try:
        llm = llama_cpp.Llama(  # verbose: llama.cpp says on stderr why it refuses a file
            model_path=path, n_ctx=64, n_threads=1, n_batch=8, n_gpu_layers=0, verbose=True
        )
        token = llm.token_bos()
        llm.eval([token if token >= 0 else 0])
        llm.close()
    except Exception as exc:  # whatever llama-cpp-python raises for a file it refuses
        print(f"refused: {type(exc).__name__}: {exc}".replace("\n", " "), flush=True)
        return 1
    print("ok", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_child(sys.argv[1]))
