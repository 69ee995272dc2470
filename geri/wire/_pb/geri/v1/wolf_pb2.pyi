from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_TYPE_UNSPECIFIED: _ClassVar[ModelType]
    MODEL_TYPE_LOCAL: _ClassVar[ModelType]
    MODEL_TYPE_REMOTE: _ClassVar[ModelType]
MODEL_TYPE_UNSPECIFIED: ModelType
MODEL_TYPE_LOCAL: ModelType
MODEL_TYPE_REMOTE: ModelType

class ContextDocument(_message.Message):
    __slots__ = ("id", "content", "score", "source", "title", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    content: str
    score: float
    source: str
    title: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., content: _Optional[str] = ..., score: _Optional[float] = ..., source: _Optional[str] = ..., title: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Parameters(_message.Message):
    __slots__ = ("max_tokens", "temperature", "top_p", "seed", "stop")
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., seed: _Optional[int] = ..., stop: _Optional[_Iterable[str]] = ...) -> None: ...

class WolfRequest(_message.Message):
    __slots__ = ("prompt", "system_prompt", "context", "model", "model_type", "parameters", "priority", "no_cache", "json_schema", "user")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    NO_CACHE_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    system_prompt: str
    context: _containers.RepeatedCompositeFieldContainer[ContextDocument]
    model: str
    model_type: ModelType
    parameters: Parameters
    priority: int
    no_cache: bool
    json_schema: str
    user: str
    def __init__(self, prompt: _Optional[str] = ..., system_prompt: _Optional[str] = ..., context: _Optional[_Iterable[_Union[ContextDocument, _Mapping]]] = ..., model: _Optional[str] = ..., model_type: _Optional[_Union[ModelType, str]] = ..., parameters: _Optional[_Union[Parameters, _Mapping]] = ..., priority: _Optional[int] = ..., no_cache: _Optional[bool] = ..., json_schema: _Optional[str] = ..., user: _Optional[str] = ...) -> None: ...

class Notice(_message.Message):
    __slots__ = ("kind", "message")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    message: str
    def __init__(self, kind: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ContextUse(_message.Message):
    __slots__ = ("id", "status", "tokens", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: str
    tokens: int
    reason: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[str] = ..., tokens: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class WolfResponse(_message.Message):
    __slots__ = ("text", "tokens_in", "tokens_out", "latency_ms", "ttft_ms", "cost_micros", "model_used", "provider", "finish_reason", "fallback_notice", "request_id", "context", "budget", "notices", "cached", "trace_id", "reasoning_tokens", "usage_estimated")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOKENS_IN_FIELD_NUMBER: _ClassVar[int]
    TOKENS_OUT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    MODEL_USED_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_NOTICE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    REASONING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    USAGE_ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    text: str
    tokens_in: int
    tokens_out: int
    latency_ms: float
    ttft_ms: float
    cost_micros: int
    model_used: str
    provider: str
    finish_reason: str
    fallback_notice: str
    request_id: str
    context: _containers.RepeatedCompositeFieldContainer[ContextUse]
    budget: ContextBudget
    notices: _containers.RepeatedCompositeFieldContainer[Notice]
    cached: bool
    trace_id: str
    reasoning_tokens: int
    usage_estimated: bool
    def __init__(self, text: _Optional[str] = ..., tokens_in: _Optional[int] = ..., tokens_out: _Optional[int] = ..., latency_ms: _Optional[float] = ..., ttft_ms: _Optional[float] = ..., cost_micros: _Optional[int] = ..., model_used: _Optional[str] = ..., provider: _Optional[str] = ..., finish_reason: _Optional[str] = ..., fallback_notice: _Optional[str] = ..., request_id: _Optional[str] = ..., context: _Optional[_Iterable[_Union[ContextUse, _Mapping]]] = ..., budget: _Optional[_Union[ContextBudget, _Mapping]] = ..., notices: _Optional[_Iterable[_Union[Notice, _Mapping]]] = ..., cached: _Optional[bool] = ..., trace_id: _Optional[str] = ..., reasoning_tokens: _Optional[int] = ..., usage_estimated: _Optional[bool] = ...) -> None: ...

class ContextBudget(_message.Message):
    __slots__ = ("window", "response_reserve", "prompt_tokens", "switched_from")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_RESERVE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SWITCHED_FROM_FIELD_NUMBER: _ClassVar[int]
    window: int
    response_reserve: int
    prompt_tokens: int
    switched_from: str
    def __init__(self, window: _Optional[int] = ..., response_reserve: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., switched_from: _Optional[str] = ...) -> None: ...

class WolfChunk(_message.Message):
    __slots__ = ("text", "done", "response", "notice")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    text: str
    done: bool
    response: WolfResponse
    notice: Notice
    def __init__(self, text: _Optional[str] = ..., done: _Optional[bool] = ..., response: _Optional[_Union[WolfResponse, _Mapping]] = ..., notice: _Optional[_Union[Notice, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelDescription(_message.Message):
    __slots__ = ("id", "name", "provider", "kind", "location", "context_window", "parameters", "quantization", "input_price_micros", "output_price_micros", "is_default")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    INPUT_PRICE_MICROS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PRICE_MICROS_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    provider: str
    kind: str
    location: str
    context_window: int
    parameters: int
    quantization: str
    input_price_micros: int
    output_price_micros: int
    is_default: bool
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., provider: _Optional[str] = ..., kind: _Optional[str] = ..., location: _Optional[str] = ..., context_window: _Optional[int] = ..., parameters: _Optional[int] = ..., quantization: _Optional[str] = ..., input_price_micros: _Optional[int] = ..., output_price_micros: _Optional[int] = ..., is_default: _Optional[bool] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelDescription]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelDescription, _Mapping]]] = ...) -> None: ...
