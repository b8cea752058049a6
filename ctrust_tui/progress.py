"""Headless progress for `ctrust run` / `ctrust compress`: rich bars on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .compress.types import CompressProgress
from .events import (
    CompressionProgress,
    DimensionScoreUpdated,
    Event,
    GenerationFinished,
    ModelLoaded,
    Notice,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    TokensGenerated,
)
from .events import Progress as ProgressEvent
from .textsafe import one_line, safe_markup

LIVE_LINE_S = 30.0  # plain mode: a live-throughput line at most this often while no generation finishes


def _fmt_eta(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(s)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class RunDisplay:
    """Consumes runner events. Plain mode prints one line per milestone (logs, CI, pipes).

    Event text (labels, steps, notices, errors) can carry file names and model output: plain
    lines go through `one_line` with markup off, bar labels through `safe_markup`."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.tty = self.console.is_terminal and sys.stderr.isatty()
        self.progress: Progress | None = None
        self.tasks: dict[str, Any] = {}
        self.overall: Any = None
        self.cancelled = False
        self.failed: str | None = None  # label of the spec whose run failed (the CLI prints the error once)
        self._last_plain = 0.0
        self._compress_task: Any = None
        # live throughput: the runner's Progress counts finished generations only, so a continuous group of
        # 128 sampled 150-token requests showed "0 tok/s · ETA 337m" for the 20 minutes before its rows finished
        self._last: ProgressEvent | None = None
        self._t0: float | None = None  # when this run's generation clock started (from Progress.elapsed_s)
        self._streamed = 0

    def _info(self) -> str:
        """Tokens/s over every decoded token (rows still generating included) when the engine streams, else
        the runner's rate over finished generations; the ETA is the runner's."""
        ev = self._last
        rate = ev.tokens_per_s if ev is not None else 0.0
        if self._streamed and self._t0 is not None:
            rate = self._streamed / max(1e-6, time.monotonic() - self._t0)
        return f"{rate:.0f} tok/s · ETA {_fmt_eta(ev.eta_s if ev is not None else None)}"

    def __enter__(self) -> "RunDisplay":
        if self.tty:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=self.console, transient=False,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def line(self, text: str) -> None:
        self.console.print(one_line(text), markup=False, highlight=False, soft_wrap=True)

    def handle(self, ev: Event) -> None:
        p = self.progress
        if isinstance(ev, CompressionProgress):
            if p is not None:
                if self._compress_task is None:
                    self._compress_task = p.add_task(f"compress {safe_markup(ev.compression)}",
                                                     total=ev.n_layers or 1, info="")
                p.update(self._compress_task, completed=ev.layer, total=max(1, ev.n_layers), info=safe_markup(ev.step))
            elif time.time() - self._last_plain > 2 or ev.layer == ev.n_layers:
                self._last_plain = time.time()
                self.line(f"compress {ev.compression}: layer {ev.layer}/{ev.n_layers} {ev.step}")
        elif isinstance(ev, ModelLoaded):
            info = ev.info
            sched = {"continuous": ", continuous batching",
                     "static+continuous": ", continuous batching for long decodes"}.get(str(info.get("scheduler")), "")
            self.line(f"loaded {ev.compression} on {info.get('device')} ({info.get('dtype')}, "
                      f"{info.get('memory_bytes', 0) / 1e6:.0f} MB, {info.get('load_seconds')} s{sched})")
            if str(info.get("dtype_choice", "")).startswith("auto:"):  # the CPU probe's measurement
                self.line(f"dtype {info['dtype_choice']}")
        elif isinstance(ev, RunStarted):
            self.tasks.clear()
            self._last, self._t0, self._streamed = None, None, 0
            verb = "resuming" if ev.resumed else "starting"
            self.line(f"{verb} run #{ev.run_id}: {ev.model} · {', '.join(ev.dimensions)} · profile {ev.profile} · "
                      f"{ev.total_generations} generations ({ev.cached_generations} cached)")
            if p is not None:
                self.overall = p.add_task(f"run #{ev.run_id} {safe_markup(ev.compression)}", total=ev.total_generations,
                                          completed=ev.cached_generations, info="")
        elif isinstance(ev, Notice):
            self.line(ev.message)
        elif isinstance(ev, ProgressEvent):
            self._last = ev
            self._t0 = time.monotonic() - ev.elapsed_s
            if p is not None and self.overall is not None:
                p.update(self.overall, completed=ev.done, info=self._info())
            elif time.time() - self._last_plain > 5 or ev.done == ev.total:
                self._last_plain = time.time()
                self.line(f"run #{ev.run_id}: {ev.done}/{ev.total} generations · {self._info()}")
        elif isinstance(ev, TokensGenerated):
            self._streamed = max(self._streamed, ev.streamed)
            if p is not None and self.overall is not None:
                p.update(self.overall, info=self._info())
            elif self._last is not None and time.time() - self._last_plain > LIVE_LINE_S:
                self._last_plain = time.time()
                self.line(f"run #{ev.run_id}: {self._last.done}/{self._last.total} generations · {self._info()} "
                          f"(rows still decoding)")
        elif isinstance(ev, DimensionScoreUpdated):
            r = ev.result
            if p is not None:
                if r.dimension not in self.tasks:
                    self.tasks[r.dimension] = p.add_task(f"  {safe_markup(r.dimension)}", total=ev.total, info="")
                score = "—" if r.score is None else f"{r.score:.1f}"
                p.update(self.tasks[r.dimension], completed=r.n, info=f"score {score}")
            elif ev.final:
                score = "—" if r.score is None else f"{r.score:.1f}"
                ci = f" [{r.ci95[0]:.1f}, {r.ci95[1]:.1f}]" if r.ci95 else ""
                self.line(f"  {r.dimension}: {score}{ci} (n={r.n})")
        elif isinstance(ev, GenerationFinished):
            pass
        elif isinstance(ev, RunFinished):
            self.line(f"run #{ev.run_id} {ev.compression} finished in {ev.seconds:.1f} s: "
                      f"{ev.generated} generated, {ev.cached} from cache")
            if ev.generated == 0:
                self.line("nothing new to generate: every output was served from the cache")
        elif isinstance(ev, RunFailed):
            self.failed = ev.compression  # not printed here: the CLI's one error line carries the message
        elif isinstance(ev, RunCancelled):
            self.cancelled = True
            self.line(f"run {ev.compression} cancelled; finished generations are kept (rerun to resume)")


class CompressDisplay:
    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.display = RunDisplay()

    def __enter__(self) -> "CompressDisplay":
        self.display.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.display.__exit__(*exc)

    def update(self, p: CompressProgress) -> None:
        self.display.handle(CompressionProgress(p.spec, p.layer, p.n_layers, p.step, p.message))
