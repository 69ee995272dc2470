"""Structured output: a JSON Schema the answer must follow, checked with a maintained validator.

A caller asks for JSON with `--schema FILE`, `--json-object`, the gRPC `json_schema` field or
the HTTP `response_format`; the schema travels as JSON text (`Request.json_schema`). Local
models are constrained while they decode, by a llama.cpp grammar derived from the schema; cloud
providers get their native structured-output parameter. Whatever produced it, the finished
answer is validated here with `jsonschema` (the reference implementation for Python), and an
answer that is not valid JSON for the schema is a `SchemaMismatch`, never passed off as a
success.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from geri.errors import InputError, SchemaMismatch
from geri.inputs import json_loads

JSON_OBJECT = '{"type":"object"}'  # --json-object, response_format json_object: any object
MAX_SCHEMA_BYTES = 256 * 1024


def schema_text(schema: Any, where: str) -> str:
    """`schema` (parsed JSON) checked against its meta-schema, as compact JSON text."""
    import jsonschema

    if not isinstance(schema, dict):
        raise InputError(f"The schema in {where} must be a JSON object (a JSON Schema).")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
        text = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except jsonschema.SchemaError as exc:
        raise InputError(
            f"The schema in {where} is not a valid JSON Schema: {exc.message}."
        ) from None
    except RecursionError:  # both recurse once per level (or more)
        raise InputError(f"The schema in {where} is nested too deeply.") from None
    if len(text.encode()) > MAX_SCHEMA_BYTES:
        raise InputError(f"The schema in {where} is over {MAX_SCHEMA_BYTES // 1024} KiB.")
    return text


def parse_schema(text: str, where: str) -> str:
    """A schema given as JSON text, checked (see `schema_text`)."""
    try:
        data = json_loads(text)
    except ValueError as exc:
        raise InputError(f"The schema in {where} is not JSON: {exc}.") from None
    return schema_text(data, where)


@functools.lru_cache(maxsize=64)
def _validator(text: str) -> Any:
    import jsonschema

    schema = json.loads(text)
    return jsonschema.validators.validator_for(schema)(schema)


def check_answer(answer: str, schema: str, model: str, *, cut: bool = False) -> None:
    """Raise `SchemaMismatch` unless `answer` is JSON valid against `schema`; `cut` says the
    answer ended at its token limit (then that is the likely reason)."""
    try:
        data = json_loads(answer)
    except ValueError:
        why = (
            "the answer reached max_tokens before the JSON was complete: allow more tokens"
            if cut
            else f"its answer is not JSON ({answer[:80]!r}…)"
        )
        raise SchemaMismatch(f"{model} was asked for JSON but {why}.") from None
    try:
        error = next(iter(_validator(schema).iter_errors(data)), None)
    except RecursionError:  # the validator recurses once per level (or more)
        raise SchemaMismatch(
            f"{model}'s answer is nested too deeply to be checked against the schema."
        ) from None
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(the whole answer)"
        raise SchemaMismatch(
            f"{model}'s answer does not follow the schema at {where}: {error.message}."
        )
