"""Requests and results survive the trip through the gRPC messages unchanged."""

from __future__ import annotations

import pytest

from geri.daemon.convert import (
    request_from_proto,
    request_to_proto,
    result_from_proto,
    result_to_proto,
)
from geri.types import Constraints, Document, Notice, Request, Result, Usage


@pytest.mark.parametrize(
    "constraints",
    [Constraints(), Constraints(local_only=True), Constraints(remote_only=True)],
    ids=["any", "local", "remote"],
)
def test_a_request_round_trips(constraints: Constraints) -> None:
    request = Request(
        "q",
        system="s",
        model="m",
        max_tokens=7,
        temperature=0.0,
        top_p=0.5,
        seed=3,
        stop=("x",),
        documents=(Document("d", "text", 0.5, "src", "title", {"k": "v"}),),
        constraints=constraints,
        use_cache=False,
    )
    assert request_from_proto(request_to_proto(request)) == request


def test_a_result_round_trips() -> None:
    result = Result(
        "id",
        "text",
        "m",
        "p",
        Usage(3, 4),
        12.5,
        ttft_ms=2.5,
        cost_micros=9,
        finish_reason="length",
        cached=True,
        notices=(Notice("fallback", "moved"), Notice("budget_alert", "80 %")),
        trace_id="t",
    )
    assert result_from_proto(result_to_proto(result)) == result
    assert result_to_proto(result).fallback_notice == "moved"
