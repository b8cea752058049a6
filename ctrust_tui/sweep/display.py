"""Terminal progress of a sweep: one rich bar per cell on a TTY, one line per milestone otherwise.

Called from the cells' driver threads (the Ray engine runs them concurrently): rich's Progress
is thread-safe, plain lines are serialised by a lock. Cell labels (model names) and error texts
are untrusted: bar descriptions go through `safe_markup`, plain lines through `one_line` with
markup off.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..events import CompressionProgress, ModelLoaded, RunFinished, RunStarted
from ..events import Progress as ProgressEvent
from ..textsafe import one_line, safe_markup
from .grid import Cell
from .run import CellStatus, SweepEvent


def _eta(s: float | None) -> str:
    if s is None:
        return "ETA ?"
    s = int(s)
    return f"ETA {s // 60}m{s % 60:02d}s" if s >= 60 else f"ETA {s}s"


class SweepDisplay:
    def __init__(self, console: Console | None = None, *, plain_every: float = 10.0) -> None:
        self.console = console or Console(stderr=True)
        self.tty = self.console.is_terminal and sys.stderr.isatty()
        self.progress: Progress | None = None
        self.tasks: dict[Cell, Any] = {}
        self.plain_every = plain_every
        self._last: dict[Cell, float] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> SweepDisplay:
        if self.tty:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=self.console, transient=False)
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def line(self, text: str) -> None:
        with self._lock:
            self.console.print(one_line(text), markup=False, highlight=False, soft_wrap=True)

    def _set(self, cell: Cell, info: str, **kw: Any) -> None:
        if self.progress is None:
            return
        if cell not in self.tasks:
            self.tasks[cell] = self.progress.add_task(safe_markup(cell.label), total=None, info="")
        self.progress.update(self.tasks[cell], info=safe_markup(info), **kw)

    def handle(self, cell: Cell, ev: SweepEvent) -> None:
        name = cell.label
        if isinstance(ev, CellStatus):
            text = {"queued": "queued", "skipped": f"done before ({ev.detail})", "finished": "finished",
                    "failed": f"failed: {ev.detail}", "cancelled": "cancelled (finished generations kept)"}
            info = text.get(ev.status, ev.status)
            if self.progress is not None:
                done = {"total": 1, "completed": 1} if ev.status == "skipped" else {}
                self._set(cell, info[:120], **done)
            elif ev.status != "queued":
                self.line(f"[{name}] {info}")
        elif isinstance(ev, CompressionProgress):
            self._set(cell, f"compress layer {ev.layer}/{ev.n_layers} {ev.step}")
        elif isinstance(ev, ModelLoaded):
            where = ev.info.get("worker_host")
            self._set(cell, f"loaded on {ev.info.get('device')}" + (f" @ {where}" if where else ""))
            if self.progress is None:
                self.line(f"[{name}] loaded on {ev.info.get('device')}" + (f" (worker {where})" if where else ""))
        elif isinstance(ev, RunStarted):
            verb = "resuming" if ev.resumed else "starting"
            self._set(cell, f"run #{ev.run_id}", total=ev.total_generations, completed=ev.cached_generations)
            if self.progress is None:
                self.line(f"[{name}] {verb} run #{ev.run_id}: {ev.total_generations} generations "
                          f"({ev.cached_generations} cached)")
        elif isinstance(ev, ProgressEvent):
            self._set(cell, f"run #{ev.run_id} · {ev.tokens_per_s:.0f} tok/s · {_eta(ev.eta_s)}", completed=ev.done,
                      total=ev.total)
            now = time.time()
            if self.progress is None and (now - self._last.get(cell, 0.0) >= self.plain_every or ev.done == ev.total):
                self._last[cell] = now
                self.line(f"[{name}] {ev.done}/{ev.total} generations · {_eta(ev.eta_s)}")
        elif isinstance(ev, RunFinished):
            if self.progress is None:
                self.line(f"[{name}] run #{ev.run_id} finished in {ev.seconds:.1f} s: {ev.generated} generated, "
                          f"{ev.cached} from the cache")
