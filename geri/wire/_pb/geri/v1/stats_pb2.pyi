from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelStats(_message.Message):
    __slots__ = ("model", "provider", "requests", "errors", "cancelled", "cached", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_p50_ms", "tokens_per_second", "input_tokens", "output_tokens", "spend_micros")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    TTFT_P50_MS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SPEND_MICROS_FIELD_NUMBER: _ClassVar[int]
    model: str
    provider: str
    requests: int
    errors: int
    cancelled: int
    cached: int
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    ttft_p50_ms: float
    tokens_per_second: float
    input_tokens: int
    output_tokens: int
    spend_micros: int
    def __init__(self, model: _Optional[str] = ..., provider: _Optional[str] = ..., requests: _Optional[int] = ..., errors: _Optional[int] = ..., cancelled: _Optional[int] = ..., cached: _Optional[int] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., latency_p99_ms: _Optional[float] = ..., ttft_p50_ms: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., spend_micros: _Optional[int] = ...) -> None: ...

class ProcessStats(_message.Message):
    __slots__ = ("rss_bytes", "cpu_percent", "threads")
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    rss_bytes: int
    cpu_percent: float
    threads: int
    def __init__(self, rss_bytes: _Optional[int] = ..., cpu_percent: _Optional[float] = ..., threads: _Optional[int] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("uptime_seconds", "requests", "requests_per_second", "queue_waiting", "queue_running", "process", "models")
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    QUEUE_WAITING_FIELD_NUMBER: _ClassVar[int]
    QUEUE_RUNNING_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    uptime_seconds: float
    requests: int
    requests_per_second: float
    queue_waiting: int
    queue_running: int
    process: ProcessStats
    models: _containers.RepeatedCompositeFieldContainer[ModelStats]
    def __init__(self, uptime_seconds: _Optional[float] = ..., requests: _Optional[int] = ..., requests_per_second: _Optional[float] = ..., queue_waiting: _Optional[int] = ..., queue_running: _Optional[int] = ..., process: _Optional[_Union[ProcessStats, _Mapping]] = ..., models: _Optional[_Iterable[_Union[ModelStats, _Mapping]]] = ...) -> None: ...
