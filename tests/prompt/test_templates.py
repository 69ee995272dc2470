"""Templates from outside geri render within a budget of work, and exactly as before within it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from geri.prompt.templates import BoundedSandbox, TemplateTooCostly, render

Geri = Callable[..., CompletedProcess[str]]
HOSTILE = {
    "nested ranges": (
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    ),
    "a huge repeat": "{{ 'x' * 1000000000 }}",
    "a repeat in a variable": "{% set s = ['a'] * 999999999 %}{{ s | length }}",
    "a huge power": "{{ 2 ** 100000000 }}",
    "endless output": "{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}",
}
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_template_that_would_work_without_end_is_stopped_at_once(source: str) -> None:
    template = BoundedSandbox().from_string(source)
    started = time.perf_counter()
    with pytest.raises(TemplateTooCostly):
        render(template, limit=10 * 2**20)
    assert time.perf_counter() - started < 5  # the budget bounds the time; generous on CI


def test_within_the_budget_a_template_renders_as_plain_jinja_does() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    ours = render(
        BoundedSandbox().from_string(CHATML), messages=messages, add_generation_prompt=True
    )
    theirs = (
        ImmutableSandboxedEnvironment()
        .from_string(CHATML)
        .render(messages=messages, add_generation_prompt=True)
    )
    assert ours == theirs
    loops = "{% for i in range(3) %}{{ i }}{% endfor %}{{ 'ab' * 3 }}{{ 2 ** 10 }}"
    assert render(BoundedSandbox().from_string(loops)) == "012ababab1024"


def test_a_hostile_prompt_template_in_the_settings_is_a_clear_error(
    geri_cli: Geri, geri_home: Path, smollm_path: Path
) -> None:
    (geri_home / "config").mkdir(parents=True)
    settings = {
        "models": [{"kind": "local", "id": "smol", "path": str(smollm_path)}],
        "prompt": {"template": HOSTILE["nested ranges"]},
    }
    (geri_home / "config" / "settings.json").write_text(json.dumps(settings))
    proc = geri_cli("ask", "--rag", "-", "q", stdin='["a document"]')
    assert proc.returncode != 0
    assert "prompt template" in proc.stderr
    assert "steps a render may take" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_hostile_chat_template_of_a_model_is_a_clear_error(
    geri_cli: Geri, geri_home: Path, smollm_path: Path
) -> None:
    (geri_home / "config").mkdir(parents=True)
    model = {
        "kind": "local",
        "id": "hostile",
        "path": str(smollm_path),
        "chat_template": HOSTILE["a huge repeat"],
    }
    (geri_home / "config" / "settings.json").write_text(json.dumps({"models": [model]}))
    proc = geri_cli("ask", "-m", "hostile", "--max-tokens", "4", "hello")
    assert proc.returncode != 0
    assert "needs too much work" in proc.stderr
    assert "Traceback" not in proc.stderr
