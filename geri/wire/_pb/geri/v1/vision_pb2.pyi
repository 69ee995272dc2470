from geri.v1 import wolf_pb2 as _wolf_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageAnalysisRequest(_message.Message):
    __slots__ = ("image", "question", "model", "parameters", "priority")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    question: str
    model: str
    parameters: _wolf_pb2.Parameters
    priority: int
    def __init__(self, image: _Optional[bytes] = ..., question: _Optional[str] = ..., model: _Optional[str] = ..., parameters: _Optional[_Union[_wolf_pb2.Parameters, _Mapping]] = ..., priority: _Optional[int] = ...) -> None: ...

class ImageAnalysisResponse(_message.Message):
    __slots__ = ("text", "details")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    text: str
    details: _wolf_pb2.WolfResponse
    def __init__(self, text: _Optional[str] = ..., details: _Optional[_Union[_wolf_pb2.WolfResponse, _Mapping]] = ...) -> None: ...

class VideoAnalysisRequest(_message.Message):
    __slots__ = ("video", "question", "model", "frames_per_second", "max_frames", "parameters", "priority")
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    video: bytes
    question: str
    model: str
    frames_per_second: float
    max_frames: int
    parameters: _wolf_pb2.Parameters
    priority: int
    def __init__(self, video: _Optional[bytes] = ..., question: _Optional[str] = ..., model: _Optional[str] = ..., frames_per_second: _Optional[float] = ..., max_frames: _Optional[int] = ..., parameters: _Optional[_Union[_wolf_pb2.Parameters, _Mapping]] = ..., priority: _Optional[int] = ...) -> None: ...

class FrameAnalysis(_message.Message):
    __slots__ = ("timestamp_seconds", "text")
    TIMESTAMP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    timestamp_seconds: float
    text: str
    def __init__(self, timestamp_seconds: _Optional[float] = ..., text: _Optional[str] = ...) -> None: ...

class VideoAnalysisResponse(_message.Message):
    __slots__ = ("frames", "summary", "model_used")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    MODEL_USED_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[FrameAnalysis]
    summary: str
    model_used: str
    def __init__(self, frames: _Optional[_Iterable[_Union[FrameAnalysis, _Mapping]]] = ..., summary: _Optional[str] = ..., model_used: _Optional[str] = ...) -> None: ...

class VideoStreamChunk(_message.Message):
    __slots__ = ("frame", "timestamp_seconds", "question", "model")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    frame: bytes
    timestamp_seconds: float
    question: str
    model: str
    def __init__(self, frame: _Optional[bytes] = ..., timestamp_seconds: _Optional[float] = ..., question: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class VideoAnalysisChunk(_message.Message):
    __slots__ = ("frame",)
    FRAME_FIELD_NUMBER: _ClassVar[int]
    frame: FrameAnalysis
    def __init__(self, frame: _Optional[_Union[FrameAnalysis, _Mapping]] = ...) -> None: ...
