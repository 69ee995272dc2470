"""RAG files: the accepted shapes, and clean refusals of malformed and hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geri.errors import InputError
from geri.prompt.rag import load_documents
from geri.types import Document


def load(data: str | bytes, **limits: int) -> tuple[Document, ...]:
    raw = data.encode() if isinstance(data, str) else data
    return load_documents("ctx.json", data=raw, **limits)  # type: ignore[arg-type]


def test_the_documented_object_form(tmp_path: Path) -> None:
    path = tmp_path / "ctx.json"
    path.write_text(
        json.dumps(
            {
                "documents": [
                    {
                        "id": "d1",
                        "content": "Refunds within 30 days.",
                        "score": 0.9,
                        "source": "handbook.pdf",
                        "title": "Refunds",
                        "metadata": {"page": 4, "lang": "en"},
                    },
                    {"id": 2, "content": "Opening hours."},
                ]
            }
        )
    )
    first, second = load_documents(path)
    assert first == Document(
        "d1", "Refunds within 30 days.", 0.9, "handbook.pdf", "Refunds", {"page": 4, "lang": "en"}
    )
    assert (second.id, second.score) == ("2", None)


def test_a_list_of_strings_and_json_lines() -> None:
    assert [d.id for d in load('["first", "second"]')] == ["1", "2"]
    lines = '{"id": "a", "content": "x"}\n\n{"id": "b", "content": "y", "score": 1}\n'
    assert [d.id for d in load(lines)] == ["a", "b"]
    assert load('\ufeff{"id": "solo", "content": "one document"}')[0].id == "solo"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('[{"id": "a"}]', "ctx.json, document 1: field 'content': Field required"),
        ('[{"id": "a", "content": "x", "colour": 1}]', "document 1: field 'colour'"),
        (
            '[{"id": "a", "content": "x"}, {"id": "b", "content": "  "}]',
            "document 2: field 'content'",
        ),
        ('[{"id": "a", "content": "x", "score": "high"}]', "field 'score'"),
        ('[{"id": "a", "content": "x", "metadata": {"k": [1]}}]', "field 'metadata.k"),
        ('{"id": "a", "content": "x"}\n{"id": "b"}\n', "ctx.json, line 2: field 'content'"),
        ('{"id": "a", "content": "x"}\n{"id": \n', "line 2: not valid JSON"),
        ('[{"id": "a", "content": "x",]', "not valid JSON: Expecting property name"),
        ("[1, 2]", "document 1: expected a document object or a string"),
        ('"just a string"', "must be a list of documents"),
        ("", "is empty"),
    ],
)
def test_malformed_input_names_position_and_field(data: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'[{"id": "a", "content": "x", "score": 1e999}]', "out of range"),
        (b'[{"id": "a", "content": "x", "score": ' + b"9" * 5000 + b"}]", "too large"),
        (b'[{"id": "a", "content": "x", "score": NaN}]', "NaN is not a valid number"),
        (b'[{"id": "a", "content": "x", "score": -Infinity}]', "not a valid number"),
        (b'[{"id": "a", "content": "caf\xe9"}]', r"not valid UTF-8 \(byte 28\)"),
        (b'[{"id": "a", "content": "x", "id": "b"}]', "the key 'id' appears twice"),
        (
            b'[{"id": "a", "content": "x"}, {"id": "a", "content": "y"}]',
            r"document 2: duplicate id 'a' \(first at document 1\)",
        ),
    ],
    ids=["deep", "huge-float", "huge-int", "nan", "infinity", "utf8", "dup-key", "dup-id"],
)
def test_hostile_input_is_rejected_cleanly(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load(data)


def test_size_is_checked_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as fh:  # a sparse file: its size alone must be enough to refuse it
        fh.truncate(50 * 1024 * 1024)
    with pytest.raises(InputError, match=r"52,428,800 bytes; the limit is 1,024"):
        load_documents(big, max_bytes=1024)
    with pytest.raises(InputError, match="limit is 1,024"):
        load(b"[" + b'"x",' * 1000 + b'"x"]', max_bytes=1024)


def test_document_count_is_limited() -> None:
    with pytest.raises(InputError, match="3 documents; the limit is 2"):
        load('["a", "b", "c"]', max_documents=2)


def test_missing_file() -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_documents(Path("/nonexistent/ctx.json"))
