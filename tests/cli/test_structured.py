"""Structured output: the real SmolLM2 model under a grammar, a cloud model that does not
follow the schema, and each provider's native parameter."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import jsonschema
import pytest

from geri.errors import SchemaMismatch
from geri.prompt.structured import check_answer
from geri.providers import google, openai
from geri.types import ChatRequest, Message
from tests.mockserver import MockServer, Reply

Geri = Callable[..., CompletedProcess[str]]


def _nested_schema(depth: int) -> dict[str, object]:
    """An array of arrays, `depth` levels deep: a valid JSON Schema, if an absurd one."""
    schema: dict[str, object] = {"type": "array"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
    return schema


# what llama.cpp's schema-to-grammar conversion can express (it does not bound numbers: a
# "maximum" is still enforced, by the validation after the answer; see the mismatch test)
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer"},
        "pets": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3},
    },
    "required": ["name", "age", "pets"],
    "additionalProperties": False,
}


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "person.json"
    path.write_text(json.dumps(PERSON))
    return path


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_the_real_model_answers_valid_json_under_the_grammar(
    geri_cli: Geri, smollm_path: Path, schema_file: Path, stream: bool
) -> None:
    assert geri_cli("models", "add", str(smollm_path), "--id", "smol").returncode == 0
    args = ["ask", "--schema", str(schema_file), "--max-tokens", "120", "--temperature", "0.8"]
    args += ["--seed", "7"]
    done = geri_cli(*args, *([] if stream else ["--no-stream"]), "Invent a person with pets.")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    jsonschema.validate(answer, PERSON)
    assert answer["name"]


def test_json_object_mode(geri_cli: Geri, smollm_path: Path) -> None:
    assert geri_cli("models", "add", str(smollm_path), "--id", "smol").returncode == 0
    args = ("ask", "--json-object", "--max-tokens", "200", "--seed", "3", "--temperature", "0")
    done = geri_cli(*args, 'Reply with a JSON object with one key "colour" for the sky.')
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), dict)


def test_an_answer_that_does_not_follow_the_schema_is_an_error(
    geri_cli: Geri, geri_home: Path, schema_file: Path
) -> None:
    with MockServer() as cloud:
        cloud.default = Reply(
            json={
                "choices": [
                    {
                        "message": {"content": '{"name": "Bo", "age": "old"}'},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 30, "completion_tokens": 9},
            }
        )
        model = {
            "kind": "cloud",
            "id": "gpt",
            "provider": "openai",
            "model": "gpt-x",
            "base_url": f"{cloud.url}/v1",
        }
        (geri_home / "config").mkdir(parents=True)
        (geri_home / "config" / "settings.json").write_text(json.dumps({"models": [model]}))
        done = geri_cli(
            "ask",
            "-m",
            "gpt",
            "--schema",
            str(schema_file),
            "--no-stream",
            "a person",
            env={"OPENAI_API_KEY": "sk-test-1234567890abcdef"},
        )
        sent = cloud.requests[0].json
    assert done.returncode == 1
    assert "does not follow the schema at age" in done.stderr
    assert "Traceback" not in done.stderr
    assert sent["response_format"]["type"] == "json_schema"  # the native parameter was sent
    assert sent["response_format"]["json_schema"]["schema"] == PERSON
    [row] = json.loads(geri_cli("logs", "--json").stdout)
    assert row["status"] == "error"


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("[1, 2", "not JSON"),
        ('{"type": "nonsense"}', "not a valid JSON Schema"),
        ("[]", "must be a JSON object"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),  # beyond the JSON decoder
        (json.dumps(_nested_schema(400)), "nested too deeply"),  # beyond the meta-schema check
    ],
    ids=["not-json", "not-a-schema", "not-an-object", "deep-json", "deep-schema"],
)
def test_a_bad_schema_file_is_refused_before_any_call(
    geri_cli: Geri, tmp_path: Path, content: str, said: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    done = geri_cli("ask", "--schema", str(bad), "hello")
    assert done.returncode == 2
    assert said in done.stderr


def test_an_answer_nested_too_deeply_to_check_is_a_schema_mismatch() -> None:
    arrays_all_the_way_down = json.dumps({"type": "array", "items": {"$ref": "#"}})
    deep = "[" * 900 + "]" * 900  # parses, then the validator recurses past the limit
    with pytest.raises(SchemaMismatch, match="nested too deeply"):
        check_answer(deep, arrays_all_the_way_down, "m")
    with pytest.raises(SchemaMismatch, match="not JSON"):  # beyond the decoder itself
        check_answer("[" * 100_000 + "]" * 100_000, arrays_all_the_way_down, "m")


def test_each_cloud_provider_gets_its_native_parameter() -> None:
    chat = ChatRequest((Message("user", "hi"),), json_schema=json.dumps(PERSON))
    payload = openai.build_payload("gpt", chat, stream=False)
    assert payload["response_format"]["json_schema"]["schema"] == PERSON
    config = google.build_payload(chat)["generationConfig"]
    assert (config["responseMimeType"], config["responseJsonSchema"]) == (
        "application/json",
        PERSON,
    )
    plain = ChatRequest((Message("user", "hi"),), json_schema='{"type":"object"}')
    assert openai.build_payload("gpt", plain, stream=False)["response_format"] == {
        "type": "json_object"
    }
