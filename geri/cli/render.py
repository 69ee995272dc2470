"""Everything the CLI shows a person, and the only module that imports rich.

Data goes to stdout (plain text or JSON, so pipes and scripts get exactly the answer); messages
about the run (errors, notices) go to stderr. Streamed answers are written raw to stdout and
flushed per chunk: rich's markup parsing has no business inside a model's output. Every byte
written to either stream passes `geri.redaction` on its way (`_Redacting`): the CLI's last word
on keys, whatever the text is and wherever it came from.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from geri.errors import OutputError
from geri.redaction import redact

if TYPE_CHECKING:
    from rich.console import Console

    from geri.install import Plan
    from geri.selection.selector import Ranking
    from geri.types import ContextReport, ModelInfo, ModelStats, Snapshot


class _Redacting:
    """A text stream that redacts what it is given and passes it to `target()` (looked up at
    each write, so a redirected `sys.stdout` is followed).

    A stream that cannot be written (a full disk, a closed descriptor) is an `OutputError`
    naming it, so the command ends with a message instead of a traceback; a call being answered
    is then logged as cancelled. A reader that stopped reading (EPIPE: `geri ... | head`) is
    left to click, which ends the command quietly.
    """

    def __init__(self, target: Callable[[], IO[str] | None], name: str) -> None:
        self._target = target
        self._name = name

    def write(self, text: str) -> int:
        with self._writing() as stream:
            stream.write(redact(text))
        return len(text)

    def flush(self) -> None:
        with self._writing() as stream:
            stream.flush()

    @contextmanager
    def _writing(self) -> Iterator[IO[str]]:
        stream = self._target()
        if stream is None:
            raise OutputError(f"geri's {self._name} is closed; give it somewhere to write.")
        try:
            yield stream
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as exc:  # ValueError: a file object closed under us
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise OutputError(f"Cannot write to {self._name}: {why}.") from None

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding…
        return getattr(self._target(), name)


_stdout = _Redacting(lambda: sys.stdout, "stdout")
_stderr = _Redacting(lambda: sys.stderr, "stderr")


@functools.cache
def _err() -> Console:
    from rich.console import Console

    return Console(file=_stderr, highlight=False, soft_wrap=True)  # type: ignore[arg-type]


@functools.cache
def _out() -> Console:
    from rich.console import Console

    return Console(file=_stdout, highlight=False, soft_wrap=True)  # type: ignore[arg-type]


def _plain(stream: IO[str]) -> bool:
    """Whether `stream` gets plain text: it is no terminal (a pipe, a file) and nothing forces
    styling, which is when rich would print the text unstyled anyway. Scripts that run
    `geri ask` then never import rich (20 ms of its start-up)."""
    if os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE") == "1":
        return False
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return True


def _note(plain: str, styled: Callable[[], str]) -> None:
    """A line on stderr: `plain` to a pipe or a file, `styled()` (rich markup) on a terminal."""
    if _plain(sys.stderr):
        _stderr.write(plain + "\n")
    else:
        _err().print(styled())


def error(message: str) -> None:
    _note(f"Error: {message}", lambda: f"[bold red]Error:[/] {_escape(message)}")


def notice(message: str) -> None:
    _note(message, lambda: f"[yellow]{_escape(message)}[/]")


def aside(message: str) -> None:
    """A quiet remark about the run, on stderr."""
    _note(message, lambda: f"[dim]{_escape(message)}[/]")


def line(message: str = "") -> None:
    if _plain(sys.stdout):
        write(message + "\n")
    else:
        _out().print(_escape(message))


def write(text: str) -> None:
    """Raw text to stdout, flushed at once (for streamed answers)."""
    _stdout.write(text)
    _stdout.flush()


def print_json(data: Any) -> None:
    _stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    _stdout.flush()


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    wrap: Collection[str] = (),
    notes: Sequence[str] = (),
) -> None:
    """Rows under column heads, readable at any width, on stdout; then `notes` (a legend),
    after a blank line.

    On a terminal: a light table fitted to the window, in which only the `wrap` columns (free
    text: names, paths, prompts) fold to make room; ids, numbers and times are never cut. When
    even that is too wide, the rightmost columns are left out, and a note on stderr says which.
    Piped: plain columns two spaces apart, nothing cut, wrapped or left out, one row per line,
    so `grep`, `cut` and `awk` see whole rows.
    """
    cells = [["" if cell is None else redact(str(cell)) for cell in row] for row in rows]
    if _plain(sys.stdout):
        _plain_table(title, list(columns), cells)
    else:
        _fitted_table(title, list(columns), cells, wrap)
    if notes:
        write("\n" + "".join(f"{note}\n" for note in notes))


def _fitted_table(
    title: str | None, columns: list[str], cells: list[list[str]], wrap: Collection[str]
) -> None:
    from rich import box
    from rich.table import Table

    shown = _columns_that_fit(columns, cells, wrap, _out().width)
    grid = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for i in shown:
        grid.add_column(columns[i], no_wrap=columns[i] not in wrap, overflow="fold")
    for row in cells:
        grid.add_row(*(_escape(row[i]) for i in shown))
    _out().print(grid)
    if len(shown) < len(columns):
        hidden = ", ".join(c for i, c in enumerate(columns) if i not in shown)
        aside(f"({hidden}: left out at this width; a wider window or --json shows them)")


def _columns_that_fit(
    columns: list[str], rows: list[list[str]], wrap: Collection[str], width: int
) -> list[int]:
    """Indices of the columns to show in `width`: all of them, or the leftmost that fit when
    the unbreakable ones are whole and each `wrap` column has room for a short word."""
    natural = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    least = [min(n, 12) if columns[i] in wrap else n for i, n in enumerate(natural)]
    shown = list(range(len(columns)))
    while len(shown) > 1 and sum(least[i] for i in shown) + 2 * (len(shown) - 1) > width:
        shown.pop()
    return shown


def _plain_table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = [title] if title else []
    for row in (columns, *rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    write("\n".join(lines) + "\n")


def context_report(report: ContextReport) -> None:
    """How the prompt was fitted to the window (`geri ask --explain`), on stderr."""
    free = report.window - report.reserve - report.prompt_tokens
    _err().print(
        f"[bold]Context:[/] window {report.window} tokens, {report.reserve} kept for the "
        f"answer, prompt {report.prompt_tokens} tokens ({free} to spare)"
    )
    if report.switched_from:
        _err().print(
            f"  The prompt did not fit {_escape(report.switched_from)}: "
            "answered by a model with a larger window."
        )
    for use in report.documents:
        tokens = f"{use.tokens} tokens" if use.tokens else ""
        _err().print(f"  {use.status:<9} {_escape(use.id):<20} {tokens:<12} {_escape(use.reason)}")


@contextmanager
def transfer(title: str) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar with size, speed and time left; yields the callback that moves it."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_err(),
        transient=False,
    )
    task = bar.add_task(_escape(title), total=None)

    def advance(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield advance


@contextmanager
def video_progress(title: str) -> Iterator[Callable[[float, float | None], None]]:
    """A bar over a video's length in seconds (on stderr; answers printed meanwhile go above)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[position]}"),
        TimeElapsedColumn(),
        console=_err(),
        transient=True,
    )
    task = bar.add_task(_escape(title), total=None, position="")

    def advance(done: float, total: float | None) -> None:
        position = f"{done:.0f} s" + (f" of {total:.0f} s" if total else "")
        bar.update(task, completed=done, total=total, position=position)

    with bar:
        yield advance


def model_stats(title: str, models: Sequence[ModelStats]) -> None:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    table(
        title,
        ["model", "reqs", "errs", "p50", "p99", "ttft", "tok/s", "cache", "spend"],
        [
            [
                m.model,
                m.requests,
                m.errors,
                ms(m.latency_p50_ms),
                ms(m.latency_p99_ms),
                ms(m.ttft_p50_ms),
                "-" if m.tokens_per_second is None else f"{m.tokens_per_second:.1f}",
                f"{m.cache_hit_rate:.0%}",
                f"${m.spend_micros / 1_000_000:.4f}",
            ]
            for m in models
        ],
        wrap={"model"},
        notes=[
            "p50, p99: latency percentiles in ms; ttft: median time to first token in ms; "
            "cache: share answered from the cache ('--json' has p95 and more)."
        ],
    )


def daemon_stats(live: Snapshot) -> None:
    line(
        f"Daemon: up {live.uptime_seconds:.0f} s, {live.requests} requests "
        f"({live.requests_per_second:.2f}/s), queue {live.waiting} waiting / {live.running} "
        f"running, {size(live.process.rss_bytes)} resident, {live.process.threads} threads"
    )
    if live.models:
        model_stats("Daemon since start", live.models)


def install_plan(plan: Plan, *, output: bool) -> None:
    """What `geri install` is about to do: the command's output (stdout) for `--dry-run`, a
    message on stderr before a download."""
    console = _out() if output else _err()
    hw = plan.hardware
    console.print(f"[bold]{_escape(plan.entry.title)}[/] — {_escape(plan.reason)}")
    console.print(
        f"  from {_escape(plan.entry.repo)}/{_escape(plan.entry.file)} "
        f"({size(plan.entry.size or plan.entry.approx_size)}, {_escape(plan.entry.license)})"
    )
    console.print(f"  to   {_escape(str(plan.destination))}")
    if plan.already_have:
        console.print(f"  resuming after {size(plan.already_have)} already downloaded")
    console.print(
        f"  machine: {size(hw.total_ram)} RAM ({size(hw.available_ram)} free), "
        f"{size(hw.free_disk)} disk free, {hw.physical_cores} cores"
        + (f", {' '.join(hw.cpu_features)}" if hw.cpu_features else "")
    )
    for problem in plan.problems:
        console.print(f"  [red]will not fit:[/] {_escape(problem)}")


# the score's factors: (column head, field, what it measures)
FACTORS = (
    ("size", "size", "model size"),
    ("hw", "hardware", "hardware fit"),
    ("rel", "reliability", "reliability"),
    ("lat", "latency", "latency"),
    ("dist", "distance", "distance"),
    ("cost", "cost", "cost"),
)


def ranking(result: Ranking, leaders: Sequence[str]) -> None:
    """Every candidate's factors, the weights and the totals (`geri route --explain`)."""
    rows = []
    for n, candidate in enumerate(result.candidates):
        values = candidate.factors.as_dict()
        mark = "*" if n == 0 else ("+" if candidate.model.id in leaders else "")
        rows.append(
            [
                f"{mark}{candidate.model.id}",
                f"{candidate.score:.3f}",
                *(f"{values[name]:.3f}" for _, name, _ in FACTORS),
            ]
        )
    weights = ", ".join(
        f"{head} = {meaning} at {result.weights[name]:.2f}" for head, name, meaning in FACTORS
    )
    table(
        "Candidates, best first",
        ["model", "score", *(head for head, _, _ in FACTORS)],
        rows,
        notes=[
            f"Factors run from 0 to 1, higher is better; score is their sum under these "
            f"weights: {weights}.",
            "* the winner, which answers; + shares the load with it.",
            *(f"excluded {model}: {why}" for model, why in result.excluded.items()),
        ],
    )


def registered(info: ModelInfo, added: bool, json_output: bool, *, new: str, known: str) -> None:
    """The outcome of registering a model: JSON, or `new` / `known` (formatted with `info`)."""
    if json_output:
        from dataclasses import asdict

        print_json({**asdict(info), "added": added})
        return
    line((new if added else known).format(info=info, size=size(info.size_bytes)))


def size(nbytes: int | None) -> str:
    if nbytes is None:
        return ""
    value = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def count(n: int | None) -> str:
    if n is None:
        return ""
    for limit, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "K")):
        if n >= limit:
            return f"{n / limit:.1f}{suffix}"
    return str(n)


def width() -> int:
    """Columns to fill on stdout: the terminal's, or a generous line when piped."""
    return 160 if _plain(sys.stdout) else _out().width


def when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def clip(text: str, width: int = 60) -> str:
    flat = " ".join(redact(text).split())  # redacted before it is cut
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
