"""Local GGUF models through llama-cpp-python.

Key decisions:

* The file is checked by geri's own GGUF reader before llama.cpp sees it, so a truncated
  download or a renamed text file is a clear `ModelFileError`, never a loader crash.
* geri runs its own token loop over `Llama.generate` instead of `create_chat_completion`: usage
  is exact in streams too, a cancelled stream stops between two tokens, and the per-token work
  is constant (the library re-decodes the whole answer at every token).
* The prompt is rendered with the model's own chat template as llama-cpp-python renders it,
  in geri's bounded Jinja sandbox (no code runs, and the work is capped: `chat_template.py`);
  a file without one gets ChatML.
* With `performance.parallel` above 1 (the default), text requests are decoded together by a
  continuous batcher (`batching.py`) in a context of its own, and the `Llama` object keeps only
  a small context of its own. With 1, or for a model with a vision projector, llama.cpp work
  runs in worker threads, one generation at a time per loaded model. The loaded model is kept
  for the provider's lifetime.
* A llava-style model with a vision projector (`mmproj`) is loaded with llama-cpp-python's chat
  handler for its family; requests with images go through `create_chat_completion`, which
  embeds them, and text-only requests still use geri's own loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geri.errors import (
    ContextTooLong,
    InputError,
    ModelFileError,
    ModelLoadError,
    ProviderError,
)
from geri.prompt.templates import TemplateTooCostly
from geri.providers import trial
from geri.providers.base import ProviderContext
from geri.providers.batching import Batcher, Sequence_
from geri.providers.decoding import decode
from geri.providers.gguf import read_gguf
from geri.types import ChatRequest, Chunk, Completion, FinishReason, Message, ModelInfo, Usage

if TYPE_CHECKING:
    from llama_cpp import Llama

CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHATML_STOPS = ("<|im_end|>", "<|im_start|>")

FINISHED: FinishReason = "stop"
OWN_CONTEXT = 512  # tokens of the Llama object's own context when the batcher decodes


def default_threads() -> int:
    """Physical cores: llama.cpp gains nothing from hyper-threads and loses to contention."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


@dataclass(slots=True)
class _Loaded:
    llm: Llama
    render: Callable[[Sequence[Message]], tuple[str, list[str]]]
    is_end: Callable[[int], bool]
    sees: bool = False  # loaded with a vision projector (mmproj)
    batcher: Batcher | None = None  # decodes text requests together (performance.parallel)


class LlamaCppProvider:
    """One GGUF model, loaded on first use and kept until `aclose`."""

    def __init__(self, info: ModelInfo, context: ProviderContext) -> None:
        self._info = info
        self._performance = context.performance
        self._chat_template = info.metadata.get("chat_template")
        self._loaded: _Loaded | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def info(self) -> ModelInfo:
        return self._info

    async def generate(self, request: ChatRequest) -> Completion:
        parts: list[str] = []
        usage, finish = Usage(), FINISHED
        loaded = await asyncio.to_thread(self._ensure_loaded)
        if loaded.batcher is not None and not _has_images(request):
            async for chunk in self._batched(loaded, loaded.batcher, request):
                parts.append(chunk.text)
                if chunk.finish_reason is not None:
                    usage, finish = chunk.usage or usage, chunk.finish_reason
            return Completion("".join(parts), usage, finish)
        cancel = threading.Event()
        try:
            usage, finish = await asyncio.to_thread(self._run, request, parts.append, cancel)
        except asyncio.CancelledError:
            cancel.set()
            raise
        return Completion("".join(parts), usage, finish)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        """Tokens as they are sampled, handed over in lock-step with the consumer.

        The worker thread waits while the consumer handles a chunk: on a machine whose cores
        all run llama.cpp threads, an event loop working in parallel would preempt one of them
        and stall every thread of the next evaluation at its barrier.
        """
        loaded = await asyncio.to_thread(self._ensure_loaded)
        if loaded.batcher is not None and not _has_images(request):
            async for chunk in self._batched(loaded, loaded.batcher, request):
                yield chunk
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk | BaseException | None] = asyncio.Queue()
        cancel = threading.Event()
        wanted = threading.Semaphore(0)

        def emit(item: Chunk | BaseException | None) -> None:
            if not cancel.is_set():
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def hand_over(text: str) -> None:
            if not cancel.is_set():  # once cancelled, the single release below may be spent
                emit(Chunk(text))
                wanted.acquire()

        def work() -> None:
            try:
                usage, finish = self._run(request, hand_over, cancel)
                emit(Chunk(usage=usage, finish_reason=finish))
            except BaseException as exc:  # handed to the consumer, raised there
                emit(exc)
            finally:
                emit(None)

        worker = loop.run_in_executor(None, work)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
                wanted.release()
        finally:
            cancel.set()
            wanted.release()
            del worker  # it sees `cancel` between two tokens and ends by itself

    async def _batched(
        self, loaded: _Loaded, batcher: Batcher, request: ChatRequest
    ) -> AsyncGenerator[Chunk, None]:
        """A request served by the batcher. Its thread never waits on this consumer: text is
        handed to the event loop as it comes (at most the token budget of it)."""
        tokens, stops, budget = await asyncio.to_thread(
            self._prompt, loaded, request, batcher.n_ctx
        )
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | tuple[int, FinishReason, BaseException | None]] = asyncio.Queue()

        def put(item: str | tuple[int, FinishReason, BaseException | None]) -> None:
            with suppress(RuntimeError):  # the loop is gone: nobody is listening any more
                loop.call_soon_threadsafe(queue.put_nowait, item)

        sequence = Sequence_(
            tokens,
            request,
            tuple(stops),
            budget,
            on_text=put,
            on_done=lambda produced, finish, error: put((produced, finish, error)),
        )
        batcher.submit(sequence)
        try:
            while isinstance(item := await queue.get(), str):
                yield Chunk(item)
            produced, finish, error = item
            if error is not None:
                raise error
            yield Chunk(usage=Usage(len(tokens), produced), finish_reason=finish)
        finally:
            sequence.cancel.set()

    def _prompt(
        self, loaded: _Loaded, request: ChatRequest, window: int
    ) -> tuple[list[int], list[str], int]:
        """The request's prompt tokens, its stop strings and its token budget in `window`."""
        prompt, stops = loaded.render(request.messages)
        tokens = loaded.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        if len(tokens) >= window:
            raise ContextTooLong(
                f"The prompt takes {len(tokens)} tokens but model {self._info.id!r} has a "
                f"context window of {window}. Shorten the prompt, or raise "
                "'performance.context_size' in the settings if the model allows more."
            )
        return tokens, [*request.stop, *stops], min(request.max_tokens, window - len(tokens))

    async def count_tokens(self, text: str) -> int:
        loaded = await asyncio.to_thread(self._ensure_loaded)
        return len(loaded.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    async def count_messages(self, messages: Sequence[Message]) -> int:
        """Exact: the prompt rendered with the model's chat template, then tokenized."""
        loaded = await asyncio.to_thread(self._ensure_loaded)

        def count() -> int:
            prompt, _ = loaded.render(messages)
            return len(loaded.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

        return await asyncio.to_thread(count)

    async def probe(self) -> None:
        """The file is still there and whole (its header and size are read, nothing loaded)."""
        await asyncio.to_thread(read_gguf, Path(self._info.source))

    async def aclose(self) -> None:
        await asyncio.to_thread(self._unload)

    def _unload(self) -> None:
        with self._load_lock, self._run_lock:
            if self._loaded is not None:
                if self._loaded.batcher is not None:
                    self._loaded.batcher.close()
                self._loaded.llm.close()
                self._loaded = None

    def _ensure_loaded(self) -> _Loaded:
        with self._load_lock:
            if self._loaded is None:
                self._loaded = self._load()
            return self._loaded

    def _load(self) -> _Loaded:
        path = Path(self._info.source)
        # the header checked and the file tried in a child process (never load into this
        # process what could take it down), each once per version of the file
        header = trial.check(path)
        import llama_cpp

        from geri.providers.chat_template import ChatTemplate

        threads = self._performance.threads or default_threads()
        handler = self._vision_handler()
        batched = self._performance.parallel > 1 and handler is None
        # llama-cpp-python offers flash attention only on or off, not llama.cpp's "auto"; on a
        # CPU auto means on (every CPU backend has the kernel), so that is what it gets there.
        # With GPU layers it stays off unless asked for; the batcher's own context asks auto.
        attention = self._performance.flash_attention
        try:
            llm = llama_cpp.Llama(
                chat_handler=handler,
                model_path=str(path),
                # batched, the batcher's context holds the window; this one only tokenizes
                n_ctx=min(OWN_CONTEXT, self._info.context_window)
                if batched
                else self._info.context_window,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=self._performance.batch_size,
                n_gpu_layers=self._performance.gpu_layers,
                flash_attn=attention == "on"
                or (attention == "auto" and self._performance.gpu_layers == 0),
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {path} ({header.architecture}, {exc}). The file is a "
                "complete GGUF, so its architecture may be newer than this llama-cpp-python: "
                "upgrade it with 'pip install -U llama-cpp-python'."
            ) from exc

        template = self._chat_template or header.chat_template or CHATML_TEMPLATE
        extra_stops = list(CHATML_STOPS) if template == CHATML_TEMPLATE else []

        def token_text(token: int) -> str:
            if token < 0:
                return ""
            return llm.detokenize([token], special=True).decode("utf-8", "replace")

        try:
            formatter = ChatTemplate(
                template,
                eos_token=token_text(llm.token_eos()),
                bos_token=token_text(llm.token_bos()),
            )
        except Exception as exc:  # jinja2 raises many types for a bad template
            llm.close()
            raise ModelLoadError(
                f"The chat template of model {self._info.id!r} is invalid ({exc}). "
                "Set a working one as 'chat_template' for this model in the settings."
            ) from exc

        def render(messages: Sequence[Message]) -> tuple[str, list[str]]:
            try:
                prompt, stops = formatter.render(messages)
            except TemplateTooCostly as exc:
                raise InputError(
                    f"The chat template of model {self._info.id!r} needs too much work ({exc}); "
                    "set a simpler one as 'chat_template' for this model in the settings."
                ) from exc
            except Exception as exc:  # the template's own raise_exception, or a render error
                raise InputError(
                    f"The chat template of model {self._info.id!r} rejected the conversation: {exc}"
                ) from exc
            return prompt, [s for s in (*stops, *extra_stops) if s]

        vocab: Any = llm._model.vocab

        def is_end(token: int) -> bool:
            return bool(llama_cpp.llama_vocab_is_eog(vocab, token))

        batcher = None
        if batched:
            try:
                batcher = Batcher(
                    llm,
                    slots=self._performance.parallel,
                    n_ctx=self._info.context_window,
                    threads=threads,
                    batch_size=self._performance.batch_size,
                    is_end=is_end,
                    flash_attention=attention,
                )
            except BaseException:
                llm.close()
                raise
        return _Loaded(llm, render, is_end, sees=handler is not None, batcher=batcher)

    def _vision_handler(self) -> Any:
        """llama-cpp-python's chat handler for the model's projector, or None without one."""
        mmproj = self._info.metadata.get("mmproj")
        if not mmproj:
            return None
        if not Path(mmproj).is_file():
            raise ModelFileError(
                f"The vision projector of model {self._info.id!r} is missing: {mmproj}. Fix "
                "'mmproj' for this model in the settings."
            )
        from llama_cpp import llama_chat_format

        name = self._info.metadata.get("vision_handler", "llava15")
        handler = getattr(llama_chat_format, VISION_HANDLERS[name])
        return handler(clip_model_path=mmproj, verbose=False)

    def _run(
        self, request: ChatRequest, on_text: Callable[[str], object], cancel: threading.Event
    ) -> tuple[Usage, FinishReason]:
        """Generate in the calling (worker) thread, handing text to `on_text` as it comes."""
        loaded = self._ensure_loaded()
        if any(m.images for m in request.messages):
            if not loaded.sees:
                raise InputError(
                    f"Model {self._info.id!r} has no vision projector: set 'mmproj' for it in "
                    "the settings, or use a vision model."
                )
            with self._run_lock:
                return self._run_vision(loaded.llm, request, on_text, cancel)
        with self._run_lock:
            llm = loaded.llm
            tokens, stops, budget = self._prompt(loaded, request, llm.n_ctx())
            if request.seed is not None:
                llm.set_seed(request.seed)
            try:
                produced, finish = decode(
                    llm, loaded.is_end, tokens, request, stops, budget, on_text, cancel
                )
            except RuntimeError as exc:
                raise ProviderError(f"llama.cpp failed while generating: {exc}") from exc
            return Usage(len(tokens), produced), finish

    def _run_vision(
        self,
        llm: Llama,
        request: ChatRequest,
        on_text: Callable[[str], object],
        cancel: threading.Event,
    ) -> tuple[Usage, FinishReason]:
        """Images go through llama-cpp-python's chat handler, which embeds them with the
        projector; text streams back chunk by chunk, cancellable between chunks."""
        produced, finish = 0, "stop"
        try:
            chunks: Any = llm.create_chat_completion(
                messages=vision_messages(request.messages),  # type: ignore[arg-type]
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                top_p=request.top_p,
                seed=request.seed,
                stop=list(request.stop) or None,
                stream=True,
            )
            for chunk in chunks:
                if cancel.is_set():
                    chunks.close()
                    break
                choice = chunk["choices"][0]
                if text := choice["delta"].get("content"):
                    produced += 1
                    on_text(text)
                if choice.get("finish_reason") == "length":
                    finish = "length"
        except ValueError as exc:
            raise ModelLoadError(
                f"llama.cpp could not use the vision projector of model {self._info.id!r} "
                f"({exc}). Check that 'mmproj' belongs to this model and that "
                "'vision_handler' names its family."
            ) from exc
        except RuntimeError as exc:
            raise ProviderError(f"llama.cpp failed while generating: {exc}") from exc
        return Usage(max(llm.n_tokens - produced, 0), produced), finish  # type: ignore[return-value]


VISION_HANDLERS = {
    "llava15": "Llava15ChatHandler",
    "llava16": "Llava16ChatHandler",
    "moondream": "MoondreamChatHandler",
    "nanollava": "NanoLlavaChatHandler",
    "minicpmv26": "MiniCPMv26ChatHandler",
    "qwen25vl": "Qwen25VLChatHandler",
    "llama3-vision-alpha": "Llama3VisionAlphaChatHandler",
    "mtmd": "MTMDChatHandler",
}


def vision_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages in the OpenAI shape llama-cpp-python's vision chat handlers read.

    >>> from geri.types import Image
    >>> vision_messages([Message("user", "What?", (Image(b"x", "image/png"),))])
    [{'role': 'user', 'content': [{'type': 'text', 'text': 'What?'}, \
{'type': 'image_url', 'image_url': {'url': 'data:image/png;base64,eA=='}}]}]
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        if not m.images:
            out.append({"role": m.role, "content": m.content})
            continue
        parts: list[dict[str, Any]] = [{"type": "text", "text": m.content}]
        parts += [{"type": "image_url", "image_url": {"url": i.data_url()}} for i in m.images]
        out.append({"role": m.role, "content": parts})
    return out


def _has_images(request: ChatRequest) -> bool:
    return any(m.images for m in request.messages)
