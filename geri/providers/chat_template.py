"""A model's chat template rendered as llama-cpp-python renders it, within a budget of work.

The environment, filters and variables are those of llama-cpp-python's `Jinja2ChatFormatter`
(which follows Transformers), so prompts are the same token for token; the sandbox is geri's
`BoundedSandbox`, so a template from a downloaded file cannot loop or grow without end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geri.prompt.templates import BoundedSandbox, render
from geri.types import Message


class ChatTemplate:
    """Compiled once per loaded model; `render` gives the prompt and its stop strings."""

    def __init__(self, template: str, eos_token: str, bos_token: str) -> None:
        import jinja2
        import jinja2.ext
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._formatter = Jinja2ChatFormatter
        environment = BoundedSandbox(
            loader=jinja2.BaseLoader(),
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[Jinja2ChatFormatter.IgnoreGenerationTags, jinja2.ext.loopcontrols],
        )
        environment.filters["tojson"] = Jinja2ChatFormatter.tojson
        self._template = environment.from_string(template)
        self.eos_token, self.bos_token = eos_token, bos_token

    def render(self, messages: Sequence[Message]) -> tuple[str, list[str]]:
        turns: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in messages]
        prompt = render(
            self._template,
            messages=turns,
            eos_token=self.eos_token,
            bos_token=self.bos_token,
            raise_exception=_raise,
            add_generation_prompt=True,
            functions=None,
            function_call=None,
            tools=None,
            tool_choice=None,
            strftime_now=self._formatter.strftime_now,
        )
        return prompt, [self.eos_token] if self.eos_token else []


def _raise(message: str) -> None:
    raise ValueError(message)
