"""`geri ask --rag` end to end: the real test model answers from a document."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

Geri = Callable[..., CompletedProcess[str]]
QUESTION = "What is the secret code of the vault?"
DOCS = [
    {
        "id": "vault",
        "content": "The secret code of the vault is 4417.",
        "score": 0.9,
        "source": "notes.txt",
        "title": "Vault",
    },
    {"id": "fruit", "content": "Bananas are yellow when they are ripe.", "score": 0.2},
]


def filler(n: int) -> str:
    """A long document of its own (no near-duplicate of the others)."""
    return " ".join(
        f"Report {n}-{k} says town {n * 100 + k} had {k % 7 + 1} days of rain in week {k}."
        for k in range(40)
    )


@pytest.fixture
def geri(geri_cli: Geri, smollm_path: Path) -> Geri:
    assert geri_cli("models", "add", str(smollm_path), "--id", "smol").returncode == 0
    return geri_cli


def write(path: Path, docs: object) -> Path:
    path.write_text(json.dumps(docs))
    return path


def test_the_model_answers_from_the_document(geri: Geri, tmp_path: Path) -> None:
    ctx = write(tmp_path / "ctx.json", DOCS)
    proc = geri("ask", QUESTION, "--rag", str(ctx), "-t", "0", "--max-tokens", "32")
    assert proc.returncode == 0, proc.stderr
    assert "4417" in proc.stdout


def test_json_and_explain_report_what_went_in(geri: Geri, tmp_path: Path) -> None:
    ctx = write(tmp_path / "ctx.json", [*DOCS, {**DOCS[0], "id": "vault-copy", "score": 0.1}])
    proc = geri(
        "ask", QUESTION, "--rag", str(ctx), "--json", "--explain", "-t", "0", "--max-tokens", "32"
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert "4417" in data["text"]
    context = data["context"]
    assert context["window"] == 4096
    assert context["response_reserve"] == 820
    assert context["prompt_tokens"] == data["usage"]["input_tokens"]
    assert [(d["id"], d["status"]) for d in context["documents"]] == [
        ("vault", "included"),
        ("fruit", "included"),
        ("vault-copy", "duplicate"),
    ]
    assert "Context: window 4096 tokens" in proc.stderr
    assert "duplicate vault-copy" in " ".join(proc.stderr.split())
    [entry] = json.loads(geri("logs", "--json").stdout)
    assert "[1] notes.txt — Vault" in entry["prompt"][-1]["content"]


def test_documents_from_stdin(geri: Geri) -> None:
    proc = geri(
        "ask", QUESTION, "--rag", "-", "-t", "0", "--max-tokens", "32", stdin=json.dumps(DOCS)
    )
    assert proc.returncode == 0, proc.stderr
    assert "4417" in proc.stdout


def test_a_context_larger_than_the_window(geri: Geri, geri_home: Path, tmp_path: Path) -> None:
    settings = geri_home / "config" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"performance": {"context_size": 512}}))
    docs = [DOCS[0]] + [
        {"id": f"filler-{n}", "content": filler(n), "score": 0.5 - n / 100} for n in range(6)
    ]
    ctx = write(tmp_path / "big.json", docs)
    proc = geri("ask", QUESTION, "--rag", str(ctx), "--json", "-t", "0", "--max-tokens", "32")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert "4417" in data["text"]
    context = data["context"]
    assert context["window"] == 512
    assert context["prompt_tokens"] <= 512 - context["response_reserve"]
    statuses = {d["id"]: d["status"] for d in context["documents"]}
    assert statuses["vault"] == "included"
    assert statuses["filler-0"] == "trimmed"
    assert {statuses[f"filler-{n}"] for n in range(1, 6)} == {"dropped"}
    assert data["usage"]["input_tokens"] == context["prompt_tokens"]


def test_a_malformed_rag_file_is_a_clear_error(geri: Geri, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "a", "content": "x"}, {"id": "b", "text": "y"}]')
    proc = geri("ask", QUESTION, "--rag", str(bad))
    assert proc.returncode == 2
    assert f"RAG input {bad}, document 2: field 'content': Field required" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = geri("ask", QUESTION, "--rag", str(tmp_path / "none.json"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    assert json.loads(geri("logs", "--json").stdout) == []  # nothing was asked
