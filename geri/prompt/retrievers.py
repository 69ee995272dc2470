"""RAG documents as popular retrieval libraries serialise them, turned into geri's own shape.

`--rag` takes geri's format (`{"id", "content", "score", "source", "title", "metadata"}`) and,
recognised automatically or named with `--rag-format`, the outputs of:

- `langchain`: `Document` dumps (`page_content`, `metadata`, `id`); `dumpd` envelopes
  (`{"lc": 1, "type": "constructor", "id": [..., "Document"], "kwargs": {...}}`); and
  `(document, score)` pairs from `similarity_search_with_score`.
- `llamaindex`: `NodeWithScore` (`{"node": {"id_", "text", "metadata"}, "score"}`).
- `haystack`: Haystack 2 `Document.to_dict()`, `meta` nested (`flatten=False`) or flattened.
- `chroma`: `Collection.query()` results, parallel lists `ids`, `documents`, `metadatas` and
  `distances` (the first query's).
- `openai`: vector store search results (`file_id`, `filename`, `score`, `attributes`,
  `content` parts), as a page or a list.
- `qdrant`: points or `ScoredPoint`s (`id`, `score`, `payload`), a `QueryResponse` (`points`),
  or the REST API's `result`.

Scores: Chroma's distances become `1 / (1 + distance)`, so closer is higher, as geri ranks.
Metadata values of any JSON type are kept: nested objects are flattened into dotted keys
(`{"a": {"b": 1}}` → `a.b: 1`), and lists and null become their JSON text. A `source` and a
`title` (or `filename`) in the metadata become the document's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from geri.errors import InputError

FORMATS = ("geri", "langchain", "llamaindex", "haystack", "chroma", "openai", "qdrant")
ACCEPTED = (
    "geri's own list of {id, content, score?, source?, title?, metadata?}, or the serialised "
    "output of LangChain (Document dumps, dumpd envelopes, (document, score) pairs), "
    "LlamaIndex (NodeWithScore), Haystack 2 (Document.to_dict, nested or flattened meta), "
    "Chroma (query results), OpenAI vector store search results or Qdrant (points, "
    "QueryResponse, REST result); name one with --rag-format if it is not recognised"
)
HAYSTACK_KEYS = {"embedding", "blob", "sparse_embedding", "dataframe"}
Doc = dict[str, Any]


def normalise(data: Any, form: str | None = None) -> Any:
    """`data` in geri's own shape: a list of document objects (or the input unchanged when it
    already is geri's, or is of no shape recognised here)."""
    if form is not None and form not in FORMATS:
        raise InputError(f"Unknown --rag-format {form!r}: choose one of {', '.join(FORMATS)}.")
    if form == "geri":
        return data
    readers = [READERS[form]] if form else list(READERS.values())
    for reader in readers:
        found = reader(data)
        if found is not None:
            return found
    if form:
        raise InputError(f"The RAG input is not in the {form} format: {ACCEPTED}.")
    return data


def _items(data: Any) -> list[Any] | None:
    return data if isinstance(data, list) else None


def _langchain_doc(item: Any) -> Doc | None:
    if not isinstance(item, dict):
        return None
    if item.get("lc") == 1 and item.get("type") == "constructor":
        ids = item.get("id")
        kwargs = item.get("kwargs")
        if isinstance(ids, list) and ids and ids[-1] == "Document" and isinstance(kwargs, dict):
            item = kwargs
        else:
            return None
    if "page_content" not in item:
        return None
    return {"id": item.get("id"), "content": item["page_content"], "metadata": item.get("metadata")}


def langchain(data: Any) -> list[Doc] | None:
    items = _items(data)
    if not items:
        return None
    docs: list[Doc] = []
    for item in items:
        score = None
        if isinstance(item, list) and len(item) == 2:  # (document, score)
            item, score = item
        doc = _langchain_doc(item)
        if doc is None:
            return None
        docs.append({**doc, "score": score})
    return _numbered(docs)


def llamaindex(data: Any) -> list[Doc] | None:
    items = _items(data)
    if not items or not all(isinstance(i, dict) and isinstance(i.get("node"), dict) for i in items):
        return None
    docs = []
    for item in items:
        node = item["node"]
        if "text" not in node:
            return None
        docs.append(
            {
                "id": node.get("id_"),
                "content": node["text"],
                "metadata": node.get("metadata"),
                "score": item.get("score"),
            }
        )
    return _numbered(docs)


def haystack(data: Any) -> list[Doc] | None:
    items = _items(data)
    if not items or not all(isinstance(i, dict) and "content" in i for i in items):
        return None
    nested = all(isinstance(i.get("meta"), dict) for i in items)
    flattened = all(HAYSTACK_KEYS & set(i) for i in items)
    if not (nested or flattened):
        return None
    docs = []
    for item in items:
        if nested:
            meta = item["meta"]
        else:
            standard = {"id", "content", "score", *HAYSTACK_KEYS, "meta"}
            meta = {k: v for k, v in item.items() if k not in standard}
            meta.update(item.get("meta") or {})  # keys that collided stay nested
        docs.append(
            {
                "id": item.get("id"),
                "content": item["content"],
                "metadata": meta,
                "score": item.get("score"),
            }
        )
    return _numbered(docs)


def chroma(data: Any) -> list[Doc] | None:
    if not isinstance(data, dict) or "ids" not in data or "documents" not in data:
        return None
    ids, texts = data["ids"], data["documents"]
    metas, distances = data.get("metadatas"), data.get("distances")
    if isinstance(ids, list) and ids and isinstance(ids[0], list):  # query(): one list a query
        ids, texts = ids[0], (texts or [[]])[0]
        metas = metas[0] if isinstance(metas, list) and metas else None
        distances = distances[0] if isinstance(distances, list) and distances else None
    if not isinstance(ids, list) or not isinstance(texts, list) or len(ids) != len(texts):
        raise InputError("The Chroma result's ids and documents are not lists of one length.")
    docs = []
    for n, (id_, text) in enumerate(zip(ids, texts, strict=True)):
        distance = distances[n] if isinstance(distances, list) and n < len(distances) else None
        score = None
        if isinstance(distance, int | float) and not isinstance(distance, bool):
            score = 1 / (1 + max(distance, 0))
        meta = metas[n] if isinstance(metas, list) and n < len(metas) else None
        docs.append({"id": id_, "content": text, "metadata": meta, "score": score})
    return _numbered(docs)


def openai(data: Any) -> list[Doc] | None:
    if isinstance(data, dict) and data.get("object") == "vector_store.search_results.page":
        data = data.get("data")
    items = _items(data)
    if not items or not all(isinstance(i, dict) and "file_id" in i for i in items):
        return None
    docs = []
    for n, item in enumerate(items):
        parts = item.get("content") or []
        text = "\n".join(
            p.get("text", "") for p in parts if isinstance(p, dict) and p.get("type") == "text"
        )
        meta = dict(item.get("attributes") or {})
        meta.setdefault("title", item.get("filename"))
        meta["file_id"] = item["file_id"]
        docs.append(
            {
                "id": f"{item['file_id']}#{n + 1}",
                "content": text,
                "metadata": meta,
                "score": item.get("score"),
            }
        )
    return _numbered(docs)


PAYLOAD_TEXT = ("page_content", "text", "content", "document")


def qdrant(data: Any) -> list[Doc] | None:
    if isinstance(data, dict) and "result" in data:  # the REST API's envelope
        data = data["result"]
    if isinstance(data, dict) and isinstance(data.get("points"), list):  # QueryResponse
        data = data["points"]
    items = _items(data)
    if not items or not all(
        isinstance(i, dict) and isinstance(i.get("payload"), dict) for i in items
    ):
        return None
    docs = []
    for item in items:
        payload = dict(item["payload"])
        key = next((k for k in PAYLOAD_TEXT if isinstance(payload.get(k), str)), None)
        if key is None:
            raise InputError(
                f"A Qdrant point has no text in its payload (looked for {', '.join(PAYLOAD_TEXT)})."
            )
        text = payload.pop(key)
        meta = payload.pop("metadata", None)
        meta = {**payload, **meta} if isinstance(meta, dict) else payload
        docs.append(
            {"id": item.get("id"), "content": text, "metadata": meta, "score": item.get("score")}
        )
    return _numbered(docs)


READERS: dict[str, Callable[[Any], list[Doc] | None]] = {
    "chroma": chroma,
    "openai": openai,
    "qdrant": qdrant,
    "llamaindex": llamaindex,
    "langchain": langchain,
    "haystack": haystack,
}


def _numbered(docs: list[Doc]) -> list[Doc]:
    """geri documents: ids as strings (numbered where missing), metadata flat, a source and a
    title lifted out of it."""
    out = []
    for n, doc in enumerate(docs, 1):
        meta = flat(doc.get("metadata") or {}) if isinstance(doc.get("metadata"), dict) else {}
        item: Doc = {"id": str(doc["id"]) if doc.get("id") not in (None, "") else str(n)}
        item["content"] = doc["content"]
        if doc.get("score") is not None:
            item["score"] = doc["score"]
        for name, keys in (
            ("source", ("source", "url", "file_path")),
            ("title", ("title", "filename", "file_name")),
        ):
            value = next((meta[k] for k in keys if isinstance(meta.get(k), str) and meta[k]), None)
            if value is not None:
                item[name] = value
        if meta:
            item["metadata"] = meta
        out.append(item)
    return out


def flat(meta: dict[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """Metadata of any JSON type as flat scalars (see the module's docstring)."""
    out: dict[str, str | int | float | bool] = {}
    for key, value in meta.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, f"{name}."))
        elif isinstance(value, str | int | float | bool):
            out[name] = value
        else:  # null, lists, anything else: its JSON text
            out[name] = json.dumps(value, ensure_ascii=False, default=str)
    return out
