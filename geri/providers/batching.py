"""Continuous batching: concurrent requests to one local model decoded together.

One llama.cpp context serves up to `performance.parallel` sequences at once. Each decode step
puts one token of every generating sequence and, in the room left in the batch, the next part
of any prompt still being read into a single `llama_decode`; each sequence then samples its own
next token with its own sampler chain (temperature, top-p, seed, JSON grammar) and keeps its own
KV cache entries under its sequence id. A request joins between two steps and leaves when it
ends, is cut by its budget or stop strings, or is cancelled; the others go on undisturbed. So
eight clients share the cores in one matrix multiply per step instead of queueing behind a lock.

The context's cells are one pool (llama.cpp's unified KV cache), not a fixed share per slot: a
lone request may use the model's whole window, as without batching, and a request joins only
when its prompt plus its token budget fit in what the running ones leave free; otherwise it waits
for one to finish. A finished sequence's cells are kept while nothing else needs them: a new
request whose prompt begins the same way (a system prompt, RAG context, the history of a chat)
takes that slot and reads only the part after the shared prefix.

All llama.cpp calls happen in one thread of the batcher's own; callers hand requests over
through a queue and receive text through callbacks, which must not block (the provider hands
them to the event loop).
"""

from __future__ import annotations

import codecs
import random
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from geri.errors import ModelLoadError, ProviderError
from geri.providers.decoding import MIN_P, TOP_K, stop_prefix_at_end
from geri.types import ChatRequest, FinishReason

if TYPE_CHECKING:
    from llama_cpp import Llama

OnText = Callable[[str], object]
OnDone = Callable[[int, FinishReason, BaseException | None], object]


@dataclass(eq=False)
class Sequence_:
    """One request being served: what to read, how to sample, and where its text goes."""

    prompt: list[int]
    request: ChatRequest
    stops: tuple[str, ...]
    budget: int
    on_text: OnText
    on_done: OnDone
    cancel: threading.Event = field(default_factory=threading.Event)
    # set by the batcher
    slot: int = -1
    unread: list[int] = field(default_factory=list)  # prompt tokens not yet in the cache
    next_token: int | None = None  # sampled, to be fed at the next step
    produced: int = 0
    pending: str = ""  # text held back: it may begin a stop string
    sampler: Any = None
    decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))

    def reserve(self) -> int:
        """Cells this sequence may still claim: its unread prompt and its remaining budget."""
        return len(self.unread) + (self.budget - self.produced)


class Batcher:
    """Serves sequences of one model from one context, in a thread of its own."""

    def __init__(
        self,
        llm: Llama,
        *,
        slots: int,
        n_ctx: int,
        threads: int,
        batch_size: int,
        is_end: Callable[[int], bool],
        flash_attention: str = "auto",
    ) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llm = llm
        self._is_end = is_end
        self.slots = slots
        # the Llama object's own settings (attention kernel, cache types, ...), so a sequence
        # decodes as it would there; then the batcher's size and sequences
        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = batch_size
        params.n_seq_max = slots
        params.n_threads = params.n_threads_batch = threads
        params.kv_unified = True  # one pool of cells: any sequence may use the whole window
        # as llama-server: llama.cpp's flash attention wherever the backend has it. Beyond its own
        # speed, it skips the masked-out cells of the other sequences in the shared pool, which
        # the plain kernel multiplies through (measured on 2 cores: one stream 59 -> 74 tokens/s;
        # eight, in-process, from 0.86 to 0.88..1.07 of llama-server's throughput)
        params.flash_attn_type = {
            "auto": llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
            "on": llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
            "off": llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED,
        }[flash_attention]
        params.no_perf = True
        ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
        if ctx is None:
            raise ModelLoadError(
                f"llama.cpp could not make a context of {n_ctx} tokens for {slots} sequences: "
                "lower 'performance.parallel' or the model's context_window in the settings."
            )
        self._ctx = ctx
        self.n_ctx = llama_cpp.llama_n_ctx(ctx)
        self._memory = llama_cpp.llama_get_memory(ctx)
        self._batch_size = batch_size
        self._batch = llama_cpp.llama_batch_init(batch_size, 0, 1)
        self._vocab = llm._model.vocab
        self._cached: list[list[int]] = [[] for _ in range(slots)]  # tokens in each slot's cells
        self._running: dict[int, Sequence_] = {}
        self._waiting: deque[Sequence_] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self.tokens_read = 0  # prompt tokens decoded
        self.tokens_reused = 0  # prompt tokens found in a slot's cells, not decoded again
        self._thread = threading.Thread(target=self._serve, name="geri-batcher", daemon=True)
        self._thread.start()

    # the callers' side

    def submit(self, sequence: Sequence_) -> None:
        """Queue `sequence`; its text and end reach its callbacks from the batcher's thread."""
        if len(sequence.prompt) + sequence.budget > self.n_ctx:
            raise ProviderError(
                f"{len(sequence.prompt)} prompt tokens and {sequence.budget} to answer do not "
                f"fit the context of {self.n_ctx}."
            )
        with self._wake:
            if self._closed:
                raise ProviderError("The model was unloaded.")
            self._waiting.append(sequence)
            self._wake.notify()

    def close(self) -> None:
        """End every sequence (as cancelled), stop the thread and free the context."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()
        self._lib.llama_batch_free(self._batch)
        self._lib.llama_free(self._ctx)

    # the batcher's thread

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._closed and not self._running and not self._waiting:
                    self._wake.wait()
                if self._closed:
                    ending = [*self._running.values(), *self._waiting]
                    self._running.clear()
                    self._waiting.clear()
                    break
                self._admit()
            if self._running:
                self._step()
        for sequence in ending:
            self._end(sequence, "cancelled")

    def _admit(self) -> None:
        """Move waiting sequences into free slots while their cells fit (in arrival order)."""
        for gone in [s for s in self._waiting if s.cancel.is_set()]:  # wherever they wait
            self._waiting.remove(gone)
            self._end(gone, "cancelled")
        while self._waiting:
            sequence = self._waiting[0]
            free = [s for s in range(self.slots) if s not in self._running]
            if not free:
                return
            slot = max(free, key=lambda s: (_common(self._cached[s], sequence.prompt), -s))
            keep = min(_common(self._cached[slot], sequence.prompt), len(sequence.prompt) - 1)
            if not self._room_for(sequence, slot, keep):
                return
            self._waiting.popleft()
            self._forget(slot, keep)
            sequence.slot = slot
            self.tokens_reused += keep
            sequence.unread = sequence.prompt[keep:]
            try:
                sequence.sampler = self._sampler(sequence.request)
            except Exception as exc:  # a grammar llama.cpp rejects
                self._end(sequence, "error", ProviderError(f"llama.cpp refused the request: {exc}"))
                continue
            self._running[slot] = sequence

    def _room_for(self, sequence: Sequence_, slot: int, keep: int) -> bool:
        """Whether `sequence` fits next to the running ones, dropping idle slots' cells (the
        least useful first) if that makes room."""
        claimed = sum(len(self._cached[s]) + r.reserve() for s, r in self._running.items())
        needed = len(sequence.prompt) + sequence.budget  # its kept prefix included
        idle = [s for s in range(self.slots) if s not in self._running and s != slot]
        held = sum(len(self._cached[s]) for s in idle)
        if claimed + needed + held <= self.n_ctx:
            return True
        for s in sorted(idle, key=lambda s: len(self._cached[s])):
            held -= len(self._cached[s])
            self._forget(s, 0)
            if claimed + needed + held <= self.n_ctx:
                return True
        return False

    def _forget(self, slot: int, keep: int) -> None:
        """Drop slot `slot`'s cells from position `keep` on."""
        if len(self._cached[slot]) > keep:
            self._lib.llama_memory_seq_rm(self._memory, slot, keep, -1)
            del self._cached[slot][keep:]

    def _sampler(self, request: ChatRequest) -> Any:
        lib = self._lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if request.json_schema:
            from geri.providers.decoding import grammar

            rules = grammar(request.json_schema)._grammar.encode("utf-8")
            constrained = lib.llama_sampler_init_grammar(self._vocab, rules, b"root")
            if constrained is None:
                lib.llama_sampler_free(chain)
                raise ValueError("the JSON schema's grammar")
            lib.llama_sampler_chain_add(chain, constrained)
        if request.temperature <= 0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
            return chain
        seed = request.seed if request.seed is not None else random.getrandbits(32)
        for sampler in (
            lib.llama_sampler_init_top_k(TOP_K),
            lib.llama_sampler_init_top_p(request.top_p, 1),
            lib.llama_sampler_init_min_p(MIN_P, 1),
            lib.llama_sampler_init_temp(request.temperature),
            lib.llama_sampler_init_dist(seed & 0xFFFFFFFF),
        ):
            lib.llama_sampler_chain_add(chain, sampler)
        return chain

    def _step(self) -> None:
        """One llama_decode over every running sequence, then one token sampled for each that
        has read its whole prompt."""
        for slot, sequence in list(self._running.items()):
            if sequence.cancel.is_set():
                self._finish(slot, "cancelled")
        if not self._running:
            return
        batch, room = self._batch, self._batch_size
        batch.n_tokens = 0
        sampled: list[tuple[int, int]] = []  # (slot, index in the batch of its logits)
        generating = [s for s in self._running.values() if s.next_token is not None]
        reading = [s for s in self._running.values() if s.next_token is None]
        for sequence in generating:  # one token each: they come first, so none is starved
            self._add(sequence, [sequence.next_token])  # type: ignore[list-item]
            sequence.next_token = None
            sampled.append((sequence.slot, batch.n_tokens - 1))
            room -= 1
        for sequence in reading:  # the rest of the batch reads prompts, oldest first
            if room <= 0:
                break
            part = sequence.unread[:room]
            del sequence.unread[: len(part)]
            self._add(sequence, part)
            self.tokens_read += len(part)
            room -= len(part)
            if not sequence.unread:
                sampled.append((sequence.slot, batch.n_tokens - 1))
        for _, index in sampled:
            batch.logits[index] = True
        status = self._lib.llama_decode(self._ctx, batch)
        if status != 0:
            error = ProviderError(f"llama.cpp failed while generating (llama_decode {status}).")
            for slot in list(self._running):
                self._forget(slot, 0)
                self._finish(slot, "error", error)
            return
        for slot, index in sampled:
            sequence = self._running[slot]
            token = self._lib.llama_sampler_sample(sequence.sampler, self._ctx, index)
            self._take(sequence, token)

    def _add(self, sequence: Sequence_, tokens: Sequence[int]) -> None:
        batch, cached = self._batch, self._cached[sequence.slot]
        for token in tokens:
            i = batch.n_tokens
            batch.token[i] = token
            batch.pos[i] = len(cached)
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = sequence.slot
            batch.logits[i] = False
            batch.n_tokens += 1
            cached.append(token)

    def _take(self, sequence: Sequence_, token: int) -> None:
        """Handle one sampled token: end of turn, text (held back while it may begin a stop
        string), the budget."""
        if self._is_end(token):
            self._finish(sequence.slot, "stop")
            return
        sequence.produced += 1
        piece = self._llm.detokenize([token])
        sequence.pending += sequence.decoder.decode(piece)
        found = [i for i in (sequence.pending.find(s) for s in sequence.stops) if i >= 0]
        if found:
            sequence.pending = sequence.pending[: min(found)]
            self._finish(sequence.slot, "stop")
            return
        ready = len(sequence.pending) - stop_prefix_at_end(sequence.pending, sequence.stops)
        if ready > 0:
            sequence.on_text(sequence.pending[:ready])
            sequence.pending = sequence.pending[ready:]
        if sequence.produced >= sequence.budget:
            self._finish(sequence.slot, "length")
            return
        sequence.next_token = token

    def _finish(self, slot: int, finish: FinishReason, error: BaseException | None = None) -> None:
        # the slot's cells stay: the prompt and the tokens fed, for a later prompt to reuse
        self._end(self._running.pop(slot), finish, error)

    def _end(
        self, sequence: Sequence_, finish: FinishReason, error: BaseException | None = None
    ) -> None:
        if sequence.sampler is not None:
            self._lib.llama_sampler_free(sequence.sampler)
            sequence.sampler = None
        if error is None and finish != "cancelled":
            sequence.pending += sequence.decoder.decode(b"", final=True)
            if sequence.pending:
                sequence.on_text(sequence.pending)
        sequence.on_done(sequence.produced, finish, error)


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common prefix of `a` and `b`.

    >>> _common([1, 2, 3], [1, 2, 4, 5])
    2
    """
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
