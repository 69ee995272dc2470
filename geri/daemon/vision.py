"""The daemon's VisionService: images, whole videos and live video streams, over gRPC.

It runs the same `VisionProcessor` as `geri vision`: the model is chosen the same way, images
are checked and fitted to its provider, a video's frames are picked at scene changes or a fixed
rate. Each call holds one queue slot for its model for as long as it runs. In a video stream the
client sends frames as they are captured; near-identical ones are skipped (the scene filter with
no minimum gap), and each analysed frame's answer is sent back as soon as it is ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

from geri.daemon.servicers import Context, DaemonState, rpc, streaming_rpc, trace_id
from geri.vision.image import open_image
from geri.vision.processor import FrameAnswer, VisionProcessor, merge
from geri.vision.video import Frame, SceneFilter, extract_frames
from geri.wire._pb.geri.v1 import vision_pb2 as pb
from geri.wire._pb.geri.v1 import vision_pb2_grpc, wolf_pb2
from geri.wire.convert import result_to_proto, sampling_from_proto


class VisionServicer(vision_pb2_grpc.VisionServiceServicer):  # type: ignore[misc]
    def __init__(self, state: DaemonState) -> None:
        self.state = state

    @rpc
    async def AnalyzeImage(
        self, message: pb.ImageAnalysisRequest, context: Context
    ) -> pb.ImageAnalysisResponse:
        processor = VisionProcessor(self.state.engine)
        template = replace(sampling_from_proto(message.parameters), trace_id=trace_id(context))
        request, info = await processor.image_request(
            message.image, "the image", message.model or None, template, message.question or None
        )
        async with self.state.scheduler.slot(self.state.admit(info), message.priority):
            result = await processor.engine.ask(request)
        return pb.ImageAnalysisResponse(text=result.text, details=result_to_proto(result))

    @rpc
    async def AnalyzeVideo(
        self, message: pb.VideoAnalysisRequest, context: Context
    ) -> pb.VideoAnalysisResponse:
        processor = VisionProcessor(self.state.engine)
        limits = processor.engine.settings.vision
        info = await processor.choose(message.model or None)
        frames = extract_frames(
            message.video,
            frames_per_second=message.frames_per_second,
            max_frames=message.max_frames or limits.max_frames,
            scene_threshold=limits.scene_threshold,
            max_pixels=limits.max_pixels,
        )
        template = replace(sampling_from_proto(message.parameters), trace_id=trace_id(context))
        async with self.state.scheduler.slot(self.state.admit(info), message.priority):
            answers = [
                a async for a in processor.frames(frames, template, info, message.question or None)
            ]
        return pb.VideoAnalysisResponse(
            frames=[_frame(a) for a in answers],
            summary=merge(answers),
            model_used=info.id,
        )

    @streaming_rpc
    async def AnalyzeVideoStream(
        self,
        chunks: AsyncIterator[pb.VideoStreamChunk],
        context: Context,
    ) -> AsyncIterator[pb.VideoAnalysisChunk]:
        first = await anext(aiter(chunks), None)
        if first is None:
            return
        processor = VisionProcessor(self.state.engine)
        info = await processor.choose(first.model or None)
        frames = self._decoded(first, chunks)
        template = replace(sampling_from_proto(wolf_pb2.Parameters()), trace_id=trace_id(context))
        async with self.state.scheduler.slot(self.state.admit(info), 0):
            async for answer in processor.frames(frames, template, info, first.question or None):
                yield pb.VideoAnalysisChunk(frame=_frame(answer))

    async def _decoded(
        self, first: pb.VideoStreamChunk, rest: AsyncIterator[pb.VideoStreamChunk]
    ) -> AsyncIterator[Frame]:
        """The stream's frames as images, near-duplicates skipped; a bad frame ends the call."""
        limits = self.state.engine.settings.vision
        scenes = SceneFilter(limits.scene_threshold, min_gap=0.0)

        async def chunks() -> AsyncIterator[pb.VideoStreamChunk]:
            yield first
            async for chunk in rest:
                yield chunk

        async for chunk in chunks():
            name = f"the frame at {chunk.timestamp_seconds:.3f} s"
            image = await asyncio.to_thread(
                open_image, chunk.frame, name, max_pixels=limits.max_pixels
            )
            if scenes.keep(image, chunk.timestamp_seconds):
                yield Frame(chunk.timestamp_seconds, image)


def _frame(answer: FrameAnswer) -> pb.FrameAnalysis:
    return pb.FrameAnalysis(timestamp_seconds=answer.timestamp, text=answer.result.text)
