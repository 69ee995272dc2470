"""Payload building and response/event parsing of each cloud provider, on literal JSON."""

from __future__ import annotations

import pytest

from geri.errors import AuthError, ContextTooLong, RateLimited, Unavailable
from geri.providers import anthropic, google, openai
from geri.types import ChatRequest, Chunk, Image, Message, Usage

PNG = Image(b"\x89PNG\r\n\x1a\nfake", "image/png")
REQUEST = ChatRequest(
    (Message("system", "Be brief."), Message("user", "Hi", (PNG,))),
    max_tokens=64,
    temperature=0.2,
    top_p=0.9,
    seed=7,
    stop=("END",),
)


def test_openai_payload() -> None:
    assert openai.build_payload("gpt-4o", REQUEST, stream=True) == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Hi"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgpmYWtl"},
                    },
                ],
            },
        ],
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "stream": True,
        "stop": ["END"],
        "seed": 7,
        "stream_options": {"include_usage": True},
    }


def test_openai_response_and_events() -> None:
    completion = openai.parse_response(
        {
            "choices": [
                {"message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "length"}
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
        }
    )
    assert (completion.text, completion.usage, completion.finish_reason) == (
        "Hello!",
        Usage(9, 2),
        "length",
    )
    assert openai.parse_event('{"choices":[{"index":0,"delta":{"role":"assistant"}}]}') == Chunk()
    assert openai.parse_event('{"choices":[{"index":0,"delta":{"content":"Hel"}}]}') == Chunk("Hel")
    assert openai.parse_event(
        '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
    ) == Chunk(finish_reason="stop")
    assert openai.parse_event(
        '{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}}'
    ) == Chunk(usage=Usage(5, 3))
    assert openai.parse_event("[DONE]") is None
    with pytest.raises(Unavailable, match="Unreadable"):
        openai.parse_event("{not json")
    with pytest.raises(RateLimited):
        openai.parse_event('{"error":{"message":"Rate limit reached","code":429}}')


def test_anthropic_payload_puts_the_system_prompt_apart() -> None:
    assert anthropic.build_payload("claude-sonnet-4-5", REQUEST, stream=False) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "system": "Be brief.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": "iVBORw0KGgpmYWtl",
                        },
                    },
                    {"type": "text", "text": "Hi"},
                ],
            }
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "stream": False,
    }


def test_anthropic_response_and_events() -> None:
    completion = anthropic.parse_response(
        {
            "type": "message",
            "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
            "stop_reason": "max_tokens",
            "usage": {"input_tokens": 12, "output_tokens": 4},
        }
    )
    assert (completion.text, completion.usage, completion.finish_reason) == (
        "Hi there",
        Usage(12, 4),
        "length",
    )
    start = '{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}'
    assert anthropic.parse_event(start) == Chunk(usage=Usage(25, 1))
    delta = '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}'
    assert anthropic.parse_event(delta) == Chunk("Hello")
    end = '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}'
    assert anthropic.parse_event(end) == Chunk(usage=Usage(0, 15), finish_reason="stop")
    assert anthropic.parse_event('{"type":"ping"}') is None
    assert anthropic.parse_event('{"type":"message_stop"}') is None


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("overloaded_error", Unavailable),
        ("rate_limit_error", RateLimited),
        ("authentication_error", AuthError),
    ],
)
def test_anthropic_error_events_after_the_200_are_mapped(kind: str, error: type[Exception]) -> None:
    # labelled as the event it was, not as an HTTP status it never had
    with pytest.raises(error, match=f"Anthropic sent an error event \\({kind}\\)"):
        anthropic.parse_event(f'{{"type":"error","error":{{"type":"{kind}","message":"{kind}!"}}}}')


def test_anthropic_prompt_too_long_is_context_too_long() -> None:
    with pytest.raises(ContextTooLong):
        anthropic.parse_event(
            '{"type":"error","error":{"type":"invalid_request_error",'
            '"message":"prompt is too long: 210000 tokens > 200000 maximum"}}'
        )


def test_google_payload() -> None:
    assert google.build_payload(REQUEST) == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgpmYWtl"}},
                    {"text": "Hi"},
                ],
            }
        ],
        "generationConfig": {
            "maxOutputTokens": 64,
            "temperature": 0.2,
            "topP": 0.9,
            "stopSequences": ["END"],
            "seed": 7,
        },
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
    }
    history = ChatRequest((Message("user", "a"), Message("assistant", "b"), Message("user", "c")))
    assert [c["role"] for c in google.build_payload(history)["contents"]] == [
        "user",
        "model",
        "user",
    ]


def test_google_response_and_events() -> None:
    body = {
        "candidates": [
            {"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finishReason": "MAX_TOKENS"}
        ],
        "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 1, "totalTokenCount": 8},
    }
    completion = google.parse_response(body)
    assert (completion.text, completion.usage, completion.finish_reason) == (
        "Hi",
        Usage(7, 1),
        "length",
    )
    assert google.parse_event('{"candidates":[{"content":{"parts":[{"text":"He"}]}}]}') == Chunk(
        "He"
    )
    final = (
        '{"candidates":[{"content":{"parts":[{"text":"y"}]},"finishReason":"STOP"}],'
        '"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}}'
    )
    assert google.parse_event(final) == Chunk("y", Usage(3, 2), "stop")
    with pytest.raises(Unavailable):
        google.parse_event(
            '{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}'
        )


def test_an_error_body_is_redacted_before_it_is_cut() -> None:
    from geri.keys import redact
    from geri.providers.http import error_message

    key = "sk-live-0123456789abcdefghijklmnop"
    body = "x " * 145 + key + " tail"  # the key straddles the 300-character cut
    shown = error_message(body, lambda text: redact(text, [key]))
    assert key[:8] not in shown
