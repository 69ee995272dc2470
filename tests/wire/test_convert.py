"""Requests and results survive the trip through the gRPC messages unchanged."""

from __future__ import annotations

import pytest

from geri.types import Constraints, Document, Notice, Request, Result, Usage
from geri.wire.convert import (
    request_from_proto,
    request_to_proto,
    result_from_proto,
    result_to_proto,
)


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
        end_user="customer-42",
    )
    assert request_from_proto(request_to_proto(request)) == request


def test_a_result_round_trips() -> None:
    result = Result(
        "id",
        "text",
        "m",
        "p",
        Usage(3, 4, reasoning_tokens=2, estimated=True),
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


def test_model_stats_round_trip_and_unknown_figures_stay_unknown() -> None:
    from geri.types import ModelStats
    from geri.wire.convert import stats_from_proto, stats_to_proto

    known = ModelStats("m", "p", 3, 1, 0, 1, 10.0, 20.0, 30.0, 5.0, 42.5, 7, 8, 9)
    unknown = ModelStats("m", "p", 1, 1, 0, 0, None, None, None, None, None, 0, 0, 0)
    for stats in (known, unknown):
        assert stats_from_proto(stats_to_proto(stats)) == stats
    assert not stats_to_proto(unknown).HasField("latency_p50_ms")
