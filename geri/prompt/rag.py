"""Reading RAG documents: the `--rag FILE` format, validated at the edge.

Three shapes are accepted, all UTF-8:

* a JSON object `{"documents": [...]}` or a JSON list of documents, each
  `{"id": "...", "content": "...", "score": 0.92, "source": "...", "title": "...",
  "metadata": {...}}` (`id` and `content` required; higher `score` is more relevant);
* a JSON list of strings (ids are their positions, relevance their order);
* JSON Lines: one document object per line.

Untrusted input is bounded before it is parsed (size, then document count) and rejected cleanly
when hostile: deep nesting, numbers too large to be scores, NaN or Infinity, invalid UTF-8,
duplicate keys in an object, duplicate document ids. Every error names the file, the position
(document number, or line for JSON Lines) and the field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from geri.errors import InputError
from geri.inputs import read_file
from geri.prompt.retrievers import ACCEPTED, normalise
from geri.types import Document

MAX_ID_CHARS = 256
MAX_INT_DIGITS = 18


class RagDocument(BaseModel):
    """One document of a RAG file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="Unique within the file.")
    content: str = Field(min_length=1, description="The passage text.")
    score: float | None = Field(None, allow_inf_nan=False, description="Relevance; higher first.")
    source: str | None = Field(None, max_length=2048, description="Where it came from (URL, path).")
    title: str | None = Field(None, max_length=1024, description="Its title, for the citation.")
    metadata: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Flat extra fields, kept with the citation."
    )

    @field_validator("id", mode="before")
    @classmethod
    def _id_from_number(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


def load_documents(
    source: Path | str,
    *,
    data: bytes | None = None,
    max_bytes: int = 16 * 1024 * 1024,
    max_documents: int = 1000,
    form: str | None = None,
) -> tuple[Document, ...]:
    """Read and validate RAG documents from `source` (a path), or from `data` already read.

    `source` names the input in messages; pass `data` for stdin (`source="-"`).
    """
    name = "stdin" if str(source) == "-" else str(source)
    raw = data if data is not None else _read(Path(source), max_bytes)
    if len(raw) > max_bytes:
        raise InputError(
            f"RAG input {name} is {len(raw):,} bytes; the limit is {max_bytes:,} "
            "(prompt.max_rag_bytes in the settings)."
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"RAG input {name} is not valid UTF-8 (byte {exc.start}); save it as UTF-8."
        ) from exc
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise InputError(f"RAG input {name} is empty.")
    items, lines = _parse(text, name, form)
    if len(items) > max_documents:
        raise InputError(
            f"RAG input {name} has {len(items):,} documents; the limit is {max_documents:,} "
            "(prompt.max_documents in the settings)."
        )
    return validate_documents(items, name, lines)


def validate_documents(
    items: list[Any], name: str, lines: list[int] | None = None
) -> tuple[Document, ...]:
    """`items` (parsed JSON, or documents sent over gRPC as dicts) checked one by one with the
    same rules, whatever way they came: ids present and unique, content not blank, scores
    finite, metadata flat."""
    documents: list[Document] = []
    seen: dict[str, str] = {}
    for n, item in enumerate(items):
        where = f"line {lines[n]}" if lines else f"document {n + 1}"
        doc = _validate(item, n, f"{name}, {where}")
        if doc.id in seen:
            raise InputError(
                f"RAG input {name}, {where}: duplicate id {doc.id!r} (first at {seen[doc.id]})."
            )
        seen[doc.id] = where
        documents.append(doc)
    return tuple(documents)


def _read(path: Path, max_bytes: int) -> bytes:
    return read_file(path, max_bytes, "RAG file", "prompt.max_rag_bytes")


def _parse(text: str, name: str, form: str | None = None) -> tuple[list[Any], list[int]]:
    """The list of raw items, and their line numbers when the input was JSON Lines; a
    retriever's output (`geri.prompt.retrievers`) is turned into geri's shape first."""
    try:
        data = normalise(_loads(text, name), form)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and "\n" in text.strip():
            items, lines = _parse_lines(text, name)
            found = normalise(items, form)
            return (found, []) if found is not items else (items, lines)
        raise InputError(
            f"RAG input {name} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}."
        ) from exc
    if isinstance(data, dict) and set(data) == {"documents"}:
        data = data["documents"]
    elif isinstance(data, dict):
        data = [data]  # a single document
    if not isinstance(data, list):
        raise InputError(
            f'RAG input {name} must be a list of documents, {{"documents": [...]}}, '
            "a list of strings, or JSON Lines."
        )
    return data, []


def _parse_lines(text: str, name: str) -> tuple[list[Any], list[int]]:
    items, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(_loads(line, f"{name}, line {number}"))
        except json.JSONDecodeError as exc:
            raise InputError(
                f"RAG input {name}, line {number}: not valid JSON ({exc.msg}, column {exc.colno})."
            ) from exc
        lines.append(number)
    return items, lines


def _loads(text: str, name: str) -> Any:
    try:
        return json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise InputError(f"RAG input {name} is nested too deeply to be documents.") from None
    except _Hostile as exc:
        raise InputError(f"RAG input {name} rejected: {exc}.") from None


class _Hostile(ValueError):
    pass


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise _Hostile(f"the number {digits[:20]}… is too large")
    return int(digits)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Hostile(f"the number {text[:20]} is out of range")
    return value


def _reject_constant(name: str) -> float:
    raise _Hostile(f"{name} is not a valid number in a RAG file")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Hostile(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _validate(item: Any, index: int, where: str) -> Document:
    if isinstance(item, str):
        item = {"id": str(index + 1), "content": item}
    if not isinstance(item, dict):
        raise InputError(f"RAG input {where}: expected a document object or a string.")
    try:
        doc = RagDocument.model_validate(item)
    except ValidationError as exc:
        problems = "; ".join(
            f"field {'.'.join(str(p) for p in e['loc']) or '(document)'!r}: {e['msg']}"
            for e in exc.errors()
        )
        raise InputError(f"RAG input {where}: {problems}. Accepted: {ACCEPTED}.") from exc
    return Document(doc.id, doc.content, doc.score, doc.source, doc.title, dict(doc.metadata))
