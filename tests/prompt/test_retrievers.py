"""RAG outputs of the retrieval libraries people use, accepted by `--rag` as they serialise them.

Each fixture follows the shape the project itself defines; the source is cited with it. They are
written here (none of these projects ships a recorded file of its output), with the field names,
nesting and types of the cited definitions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from geri.errors import InputError
from geri.prompt.rag import load_documents

CASES: dict[str, Any] = {
    # langchain_core/documents/base.py: Document(page_content, metadata, id, type="Document"),
    # serialised by Document.model_dump()
    "langchain-dump": [
        {
            "id": "a1",
            "page_content": "Paris is the capital of France.",
            "metadata": {"source": "atlas.pdf", "page": 3, "tags": ["geo", "eu"], "extra": None},
            "type": "Document",
        },
        {"id": None, "page_content": "Berlin is in Germany.", "metadata": {}, "type": "Document"},
    ],
    # langchain_core/load/dump.py dumpd() -> Serializable.to_json(): a constructor envelope
    "langchain-dumpd": [
        {
            "lc": 1,
            "type": "constructor",
            "id": ["langchain", "schema", "document", "Document"],
            "kwargs": {
                "page_content": "Paris is the capital of France.",
                "metadata": {"source": "atlas.pdf", "page": 3},
                "type": "Document",
            },
        }
    ],
    # VectorStore.similarity_search_with_score -> list[tuple[Document, float]], as JSON pairs
    "langchain-pairs": [
        [{"page_content": "Paris is the capital of France.", "metadata": {"source": "a"}}, 0.91],
        [{"page_content": "Berlin is in Germany.", "metadata": {"source": "b"}}, 0.42],
    ],
    # llama_index/core/schema.py: NodeWithScore(node: TextNode(id_, text, metadata), score)
    "llamaindex": [
        {
            "node": {
                "id_": "n-1",
                "text": "Paris is the capital of France.",
                "metadata": {"file_name": "atlas.pdf", "page_label": "3", "nested": {"k": 1}},
                "class_name": "TextNode",
            },
            "score": 0.87,
            "class_name": "NodeWithScore",
        }
    ],
    # haystack/dataclasses/document.py: Document.to_dict(flatten=False): meta nested
    "haystack-nested": [
        {
            "id": "h1",
            "content": "Paris is the capital of France.",
            "blob": None,
            "meta": {"title": "Atlas", "year": 2024},
            "score": 0.7,
            "embedding": None,
            "sparse_embedding": None,
        }
    ],
    # ... Document.to_dict() (flatten=True, the default): meta keys at the top level
    "haystack-flat": [
        {
            "id": "h1",
            "content": "Paris is the capital of France.",
            "blob": None,
            "score": 0.7,
            "embedding": None,
            "sparse_embedding": None,
            "title": "Atlas",
            "year": 2024,
        }
    ],
    # chromadb/api/types.py: QueryResult(ids, documents, metadatas, distances: List[List[...]])
    "chroma": {
        "ids": [["c1", "c2"]],
        "documents": [["Paris is the capital of France.", "Berlin is in Germany."]],
        "metadatas": [[{"source": "atlas"}, None]],
        "distances": [[0.25, 1.5]],
        "embeddings": None,
        "uris": None,
        "data": None,
        "included": ["metadatas", "documents", "distances"],
    },
    # openai-python src/openai/types/vector_store_search_response.py (VectorStoreSearchResponse)
    # in a page (vector_stores.search returns SyncPage: object "vector_store.search_results.page")
    "openai": {
        "object": "vector_store.search_results.page",
        "search_query": "capital of France",
        "data": [
            {
                "file_id": "file-abc",
                "filename": "atlas.pdf",
                "score": 0.83,
                "attributes": {"region": "eu", "year": 2024},
                "content": [{"type": "text", "text": "Paris is the capital of France."}],
            }
        ],
        "has_more": False,
        "next_page": None,
    },
    # qdrant_client/http/models/models.py: QueryResponse(points: List[ScoredPoint]);
    # ScoredPoint(id, version, score, payload, vector); payload as langchain-qdrant writes it
    "qdrant": {
        "points": [
            {
                "id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26",
                "version": 3,
                "score": 0.79,
                "payload": {
                    "page_content": "Paris is the capital of France.",
                    "metadata": {"source": "atlas.pdf"},
                },
                "vector": None,
            }
        ]
    },
    # the REST API: {"result": [ScoredPoint...], "status": "ok", "time": ...}, Haystack payload
    "qdrant-rest": {
        "result": [
            {"id": 7, "version": 1, "score": 0.5, "payload": {"content": "Paris is in France."}}
        ],
        "status": "ok",
        "time": 0.002,
    },
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_format_is_recognised(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(CASES[name]))
    docs = load_documents(path)
    assert docs
    assert all(d.content.strip() for d in docs)
    assert len({d.id for d in docs}) == len(docs)
    first = docs[0]
    assert "Paris" in first.content
    form = name.split("-")[0]
    named = load_documents(path, form=form)  # named with --rag-format, the same documents
    assert named == docs


def test_scores_metadata_sources_and_titles_are_kept(tmp_path: Path) -> None:
    def load(name: str) -> Any:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(CASES[name]))
        return load_documents(path)

    paris, berlin = load("chroma")
    assert paris.score is not None
    assert berlin.score is not None
    assert paris.score > berlin.score  # the closer document ranks higher
    assert paris.score == pytest.approx(1 / 1.25)
    [doc, _] = load("langchain-dump")
    assert doc.source == "atlas.pdf"
    assert doc.metadata["tags"] == '["geo", "eu"]'  # a list: its JSON text
    assert doc.metadata["extra"] == "null"
    [node] = load("llamaindex")
    assert (node.id, node.title, node.score) == ("n-1", "atlas.pdf", 0.87)
    assert node.metadata["nested.k"] == 1  # nested objects flattened
    [flat] = load("haystack-flat")
    assert (flat.title, flat.metadata["year"]) == ("Atlas", 2024)
    [hit] = load("openai")
    assert (hit.title, hit.score, hit.metadata["region"]) == ("atlas.pdf", 0.83, "eu")
    pairs = load("langchain-pairs")
    assert [d.score for d in pairs] == [0.91, 0.42]


def test_an_unrecognised_shape_names_the_accepted_ones(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_text(json.dumps([{"passage": "x", "relevance": 1}]))
    with pytest.raises(InputError, match=r"LangChain .*LlamaIndex .*Haystack .*Chroma .*Qdrant"):
        load_documents(path)
    with pytest.raises(InputError, match="not in the chroma format"):
        load_documents(tmp_path / "odd.json", form="chroma")


def test_the_cli_takes_a_retrievers_output(
    geri_cli: Callable[..., CompletedProcess[str]], smollm_path: Path, tmp_path: Path
) -> None:
    assert geri_cli("models", "add", str(smollm_path), "--id", "smol").returncode == 0
    path = tmp_path / "hits.json"
    path.write_text(json.dumps(CASES["llamaindex"]))
    done = geri_cli("ask", "--rag", str(path), "--explain", "--max-tokens", "8", "Capital?")
    assert done.returncode == 0, done.stderr
    assert "n-1" in done.stderr  # the context report lists the document
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps(CASES["chroma"]))
    wrong = geri_cli("ask", "--rag", str(odd), "--rag-format", "qdrant", "q")
    assert wrong.returncode == 2
    assert "not in the qdrant format" in wrong.stderr
