"""Files that pass geri's own checks but that llama.cpp refuses or aborts on are refused by a
trial load in a child process — never loaded into geri's (or a daemon's) own process.

The files are mutations of the real test model: hyperparameters that disagree with the tensors
(llama.cpp raises) and a block count that makes llama.cpp abort (SIGABRT), the latter tried
directly, as geri's header check would otherwise catch it first.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from geri.errors import ModelFileError, ModelLoadError
from geri.providers import trial
from geri.providers.gguf import read_gguf
from tests.providers.test_gguf import _with_u32


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("llama.embedding_length", 577, "tensor 'token_embd.weight' has wrong shape"),
        ("llama.feed_forward_length", 1, "tensor 'blk.0.ffn_gate.weight' has wrong shape"),
        ("llama.attention.head_count", 7, "invalid n_rot"),
    ],
    ids=["embedding_length", "feed_forward_length", "head_count"],
)
def test_a_file_llama_cpp_refuses_is_never_added(
    smollm_path: Path,
    tmp_path: Path,
    geri_cli: Callable[..., CompletedProcess[str]],
    key: str,
    value: int,
    said: str,
) -> None:
    bad = _with_u32(smollm_path, tmp_path / "bad.gguf", key, value)
    read_gguf(bad)  # geri's own header check finds nothing wrong
    added = geri_cli("models", "add", str(bad))
    assert added.returncode == 1
    assert said in added.stderr
    assert "Traceback" not in added.stderr
    listed = json.loads(geri_cli("models", "list", "--json").stdout)
    assert not [m for m in listed if m.get("location") == "local"]


def test_a_file_that_aborts_llama_cpp_is_refused_and_geri_survives(
    smollm_path: Path, tmp_path: Path
) -> None:
    bad = _with_u32(smollm_path, tmp_path / "abort.gguf", "llama.block_count", 1000)
    with pytest.raises(ModelLoadError, match=r"crashed loading it \(SIGABRT\)"):
        trial.verify(bad, cache_dir=tmp_path)


def test_the_verdict_is_kept_until_the_file_changes(
    smollm_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = _with_u32(smollm_path, tmp_path / "bad.gguf", "llama.embedding_length", 577)
    trials: list[object] = []
    real_run = subprocess.run

    def counted(*args: object, **kwargs: object) -> object:
        trials.append(args)
        return real_run(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", counted)
    for _ in range(3):
        with pytest.raises(ModelLoadError, match="wrong shape"):
            trial.verify(bad, cache_dir=tmp_path)
    assert len(trials) == 1  # tried once, then the kept verdict
    verdicts = json.loads((tmp_path / trial.VERDICTS).read_text())
    assert len(verdicts) == 1

    good = tmp_path / "bad.gguf"
    good.write_bytes(smollm_path.read_bytes())  # the file replaced: tried again
    os.utime(good, ns=(1, 2))
    trial.verify(good, cache_dir=tmp_path)
    trial.verify(good, cache_dir=tmp_path)
    assert len(trials) == 2


def test_a_checked_files_header_is_not_parsed_again_until_it_changes(
    smollm_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geri.providers import gguf

    model = tmp_path / "model.gguf"
    model.write_bytes(smollm_path.read_bytes())
    parsed: list[Path] = []
    real_read = gguf.read_gguf

    def counted(path: Path) -> gguf.GGUFInfo:
        parsed.append(path)
        return real_read(path)

    monkeypatch.setattr(gguf, "read_gguf", counted)
    first = trial.check(model, cache_dir=tmp_path)
    again = trial.check(model, cache_dir=tmp_path)
    assert first == again == trial.Facts("llama", real_read(model).chat_template)
    assert first.chat_template
    assert len(parsed) == 1
    model.write_bytes(smollm_path.read_bytes()[:-1024])  # truncated: a new version, refused
    with pytest.raises(ModelFileError, match=r"shorter|truncated|incomplete"):
        trial.check(model, cache_dir=tmp_path)
    assert len(parsed) == 2
