"""The live run: compression progress, streaming generations with verdicts, scores as they arrive.

The runner executes in one thread worker. Its events go through an `EventBatcher`, which
hands them to this screen at most ~15 times a second as one `EventBatch` message; each batch is
applied in one pass and every panel is re-rendered at most once per batch.

Nothing on the screen waits for a batch to finish: a 1 s timer advances `elapsed`, tokens/s
counts the tokens actually streamed (rows still generating included), and the ETA counts down
from the last estimate. A sampled toxicity batch (25 samples x 150 tokens) takes minutes on a
CPU; before, these figures only moved when it ended.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Footer, Log, ProgressBar, Static
from textual.worker import Worker, WorkerState

from ...events import (
    CompressionProgress,
    DimensionScoreUpdated,
    GenerationFinished,
    ModelLoaded,
    Notice,
    Progress,
    PromptsStarted,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    TokensGenerated,
)
from ...report import COLUMNS
from ...textsafe import strip_control
from ..bridge import EventBatch, EventBatcher
from ..widgets.modals import ConfirmModal
from ..widgets.render import dim_title, fmt_num, fmt_secs, inert, score_table
from .base import CtrustScreen

MAX_CURRENT = 12  # streamed prompts shown at once (the rest of the batch is summarised)
TICK_S = 1.0  # elapsed, tokens/s and ETA refresh at least this often, whatever the runner does


class RunScreen(CtrustScreen):
    NAV = "run"
    HELP = "finished generations stay cached: rerunning the same settings resumes"
    BINDINGS = [Binding("x", "cancel", "Cancel run (asks first)", id="run.cancel")]

    state: reactive[str] = reactive("idle", init=False)  # idle|starting|compressing|loaded|generating|...
    elapsed: reactive[float] = reactive(0.0, init=False)  # seconds since this spec's generation started
    streamed: reactive[int] = reactive(0, init=False)  # tokens decoded in this spec's run so far

    def __init__(self) -> None:
        super().__init__()
        self.clock = time.monotonic  # injectable: snapshot tests freeze it
        self.running = False
        self.cancel_event = threading.Event()
        self.request: dict[str, Any] | None = None
        self.reset()

    def reset(self) -> None:
        self.run_id: int | None = None
        self.current: dict[tuple[str, int], dict[str, Any]] = {}
        self.verdicts: dict[str, dict[str, Any]] = {}
        self.scores: dict[str, dict[str, Any]] = {}
        self.progress: Progress | None = None
        self.totals: tuple[int, int] | None = None  # (generations, cached) of the current spec's run
        self.queue_status: dict[str, str] = {}
        self.queue_avg: dict[str, float | None] = {}
        self.active: str | None = None
        self.gen_started: float | None = None  # monotonic time of RunStarted
        self.progress_at = 0.0  # monotonic time of the last Progress event (its ETA counts down from there)
        self.set_reactive(RunScreen.state, "idle")
        self.set_reactive(RunScreen.elapsed, 0.0)
        self.set_reactive(RunScreen.streamed, 0)
        self.batches = 0

    def compose(self) -> ComposeResult:
        yield self.nav()
        yield Static(Text("No run yet — set one up on the Setup screen (3), then ctrl+r.", style="dim"),
                     id="run-title")
        yield Static(id="run-queue")
        with Horizontal(classes="row", id="compress-row"):
            yield Static("compress", classes="field")
            yield ProgressBar(id="compress-bar", show_eta=False)
            yield Static(id="compress-label", classes="grow")
        with Horizontal(classes="row", id="gen-row"):
            yield Static("generate", classes="field")
            yield ProgressBar(id="gen-bar", show_eta=False, show_percentage=False)
            yield Static(id="gen-label")
        yield Static(id="scores", classes="panel")
        with Vertical(id="gens", classes="panel"):
            yield Static(id="current")
            yield Log(id="history", highlight=False, max_lines=2000)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#scores", Static).border_title = "scores (0-100, higher = more trustworthy)"
        self.query_one("#gens", Vertical).border_title = "generations"
        self._render_all()
        self.set_interval(TICK_S, self._tick)

    # -- reactive state: the timer and the events set it, the watchers render ----------------
    def _tick(self) -> None:
        if self.running and self.gen_started is not None and self.state in ("generating", "cancelling"):
            self.elapsed = self.clock() - self.gen_started

    def watch_elapsed(self) -> None:
        self._render_progress()

    def watch_streamed(self) -> None:
        self._render_progress()

    def watch_state(self) -> None:
        self._render_header()

    # -- starting and cancelling ----------------------------------------------------------
    def start(self, request: dict[str, Any]) -> None:
        self.reset()
        self.request = request
        self.running = True
        self.state = "starting"
        self.cancel_event = threading.Event()
        for spec in request["compressions"]:
            self.queue_status[str(spec)] = "queued"
        self.query_one("#history", Log).clear()
        self.query_one("#compress-bar", ProgressBar).update(total=None, progress=0)
        self.query_one("#gen-bar", ProgressBar).update(total=None, progress=0)
        self.query_one("#compress-label", Static).update(Text("resolving the model…", style="dim"))
        self._render_all()
        self.run_worker_thread(request)

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def run_worker_thread(self, request: dict[str, Any]) -> list[int]:
        from ...runner import RunConfig, Runner  # the engine itself is imported by real_backend, lazily
        from ...trust.prompt_format import MODEL
        from ...trust.rules import DEFAULT_RULES

        factory = self.capp.backend_factory
        if factory is None:
            from ...runner import real_backend as factory
        cfg = RunConfig(model=request["model"], compressions=tuple(request["compressions"]),
                        dimensions=tuple(request["dimensions"]), profile=request["profile"], seed=request["seed"],
                        device=request["device"], calibration=request["calibration"], db_path=self.capp.db_path,
                        models_dir=self.capp.models_dir, limit=request["limit"],
                        rules=request.get("rules", DEFAULT_RULES), prompt_format=request.get("prompt_format", MODEL),
                        dtype=request.get("dtype", "auto"))
        with EventBatcher(lambda evs: self.post_message(EventBatch(evs)), rate=self.capp.batch_rate) as batcher:
            return Runner(cfg, batcher.emit, cancel=self.cancel_event, backend_factory=factory).execute()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "run":
            return
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self.running = False
            if event.state == WorkerState.ERROR and self.state not in ("failed",):
                self.state = "failed"
                err = event.worker.error
                self._history([f"✗ failed: {strip_control(str(err))}"])
            elif self.state not in ("cancelled", "failed"):
                self.state = "finished"
            self._render_header()

    def action_cancel(self) -> None:
        if not self.running:
            self.notify("no run in progress", severity="warning", timeout=2)
            return

        def answer(yes: bool | None) -> None:
            if yes and self.running:
                self.cancel_event.set()
                self.state = "cancelling"
                self._render_header()
                self.notify("cancelling after the current decoding step…", timeout=3)

        self.app.push_screen(ConfirmModal("Cancel the run? Finished generations stay cached; "
                                          "rerunning the same settings resumes where it stopped."), answer)

    # -- events ---------------------------------------------------------------------------
    @on(EventBatch)
    def _on_batch(self, message: EventBatch) -> None:
        self.apply_events(message.events)

    def apply_events(self, events: list[Any]) -> None:
        """Apply one batch of runner events, then re-render each touched panel once."""
        self.batches += 1
        dirty: set[str] = set()
        log_lines: list[str] = []
        streamed = self.streamed
        for ev in events:
            if isinstance(ev, TokensGenerated):
                for rid, s, text in ev.chunks:
                    item = self.current.get((rid, s))
                    if item is not None:
                        item["out"].append(text)
                streamed = max(streamed, ev.streamed)
                dirty.add("current")
            elif isinstance(ev, PromptsStarted):
                ns = ev.samples or (1,) * len(ev.items)
                # the rows now generating: a row still in the set keeps what it streamed so far (the
                # continuous scheduler reports its set each time a request joins)
                self.current = {(rid, s): self.current.get((rid, s))
                                or {"dim": dim, "prompt": prompt, "out": [], "n": n}
                                for (rid, s, dim, prompt), n in zip(ev.items, ns)}
                dirty.add("current")
            elif isinstance(ev, GenerationFinished):
                self.verdicts[ev.record_id] = dict(ev.verdict)
                # the panel shows rows still generating: a finished record moves to the log
                self.current = {k: v for k, v in self.current.items() if k[0] != ev.record_id}
                if not ev.cached:
                    out = ev.outputs[0] if ev.outputs else ""
                    word = strip_control(str(ev.verdict.get("verdict", "?")))
                    log_lines.append(f"✓ [{word}] {strip_control(ev.record_id)}: " + " ".join(strip_control(out).split())[:160])
                dirty.add("current")
            elif isinstance(ev, Progress):
                self.progress = ev
                self.progress_at = self.clock()
                if ev.elapsed_s > self.elapsed:  # the runner's clock started a moment earlier
                    self.gen_started = self.progress_at - ev.elapsed_s
                    self.set_reactive(RunScreen.elapsed, ev.elapsed_s)
                dirty.add("progress")
            elif isinstance(ev, DimensionScoreUpdated):
                r = ev.result
                self.scores[r.dimension] = {"dimension": r.dimension, "score": r.score, "ci95": r.ci95,
                                            "refusal_rate": r.refusal_rate, "n": r.n, "total": ev.total,
                                            "final": ev.final}
                dirty.add("scores")
            elif isinstance(ev, CompressionProgress):
                self._set_active(ev.compression)
                bar = self.query_one("#compress-bar", ProgressBar)
                bar.update(total=max(1, ev.n_layers), progress=ev.layer)
                msg = f"{strip_control(ev.compression)}: layer {ev.layer}/{ev.n_layers} · {strip_control(ev.step)}"
                if ev.message:
                    msg += f" · {strip_control(ev.message)}"
                self.query_one("#compress-label", Static).update(Text(msg))
                self.state = "compressing"
                dirty.add("header")
            elif isinstance(ev, ModelLoaded):
                self._set_active(ev.compression)
                info = {k: v for k, v in ev.info.items() if k in ("device", "dtype", "reused")}
                detail = ", ".join(f"{k} {v}" for k, v in info.items())
                if str(ev.info.get("dtype_choice", "")).startswith("auto:"):  # what the CPU probe measured
                    detail += f"; dtype {ev.info['dtype_choice']}"
                self.query_one("#compress-label", Static).update(
                    inert(f"{ev.compression}: model loaded" + (f" ({detail})" if detail else "")))
                bar = self.query_one("#compress-bar", ProgressBar)
                bar.update(total=1, progress=1)
                self.state = "loaded"
                dirty.add("header")
            elif isinstance(ev, RunStarted):
                self._set_active(ev.compression)
                self.run_id = ev.run_id
                self.scores = {d: {"dimension": d, "score": None, "ci95": None, "refusal_rate": None, "n": 0,
                                   "total": None, "final": False} for d in ev.dimensions}
                self.verdicts = {}
                self.current = {}
                self.progress = None
                self.totals = (ev.total_generations, ev.cached_generations)
                self.gen_started = self.progress_at = self.clock()
                self.set_reactive(RunScreen.elapsed, 0.0)
                self.set_reactive(RunScreen.streamed, 0)
                streamed = 0
                self.state = "generating"
                self.query_one("#gen-bar", ProgressBar).update(total=max(1, ev.total_generations),
                                                              progress=ev.cached_generations)
                log_lines.append(f"▶ run #{ev.run_id} {strip_control(ev.compression)}: {ev.total_generations} "
                                 f"generations ({ev.cached_generations} cached){' — resumed' if ev.resumed else ''}")
                dirty |= {"header", "scores", "current", "progress"}
            elif isinstance(ev, RunFinished):
                label = strip_control(ev.compression)
                self.queue_status[label.split("@")[0]] = "done"
                vals = [r.score for r in ev.results if r.score is not None]
                self.queue_avg[label.split("@")[0]] = sum(vals) / len(vals) if vals else None
                self.set_reactive(RunScreen.elapsed, ev.seconds)
                dirty.add("progress")
                log_lines.append(f"■ run #{ev.run_id} {label} finished in {fmt_secs(ev.seconds)}: "
                                 f"{ev.generated} generated, {ev.cached} cached")
                dirty |= {"header", "current"}
            elif isinstance(ev, RunFailed):
                self.queue_status[strip_control(ev.compression).split("@")[0]] = "failed"
                self.state = "failed"
                log_lines.append(f"✗ {strip_control(ev.compression)} failed: {strip_control(ev.error)}")
                dirty.add("header")
            elif isinstance(ev, RunCancelled):
                self.queue_status[strip_control(ev.compression).split("@")[0]] = "cancelled"
                self.state = "cancelled"
                log_lines.append(f"■ {strip_control(ev.compression)} cancelled")
                dirty.add("header")
            elif isinstance(ev, Notice):
                self.notify(strip_control(ev.message), severity={"error": "error", "warning": "warning"}.get(
                    ev.level, "information"), timeout=3)
        with self.app.batch_update():
            if streamed != self.streamed:
                self.set_reactive(RunScreen.streamed, streamed)
                dirty.add("progress")
            if log_lines:
                self._history(log_lines)
            if "header" in dirty:
                self._render_header()
            if "progress" in dirty:
                self._render_progress()
            if "scores" in dirty:
                self._render_scores()
            if "current" in dirty:
                self._render_current()

    def _set_active(self, label: str) -> None:
        key = strip_control(label).split("@")[0]
        if self.active != key:
            self.active = key
            self.queue_status[key] = "running"

    # -- rendering ------------------------------------------------------------------------
    def _history(self, lines: list[str]) -> None:
        self.query_one("#history", Log).write_lines(lines)

    def _render_all(self) -> None:
        self._render_header()
        self._render_progress()
        self._render_scores()
        self._render_current()

    def _render_header(self) -> None:
        req = self.request
        if req is None:
            return
        t = Text()
        t.append_text(inert(str(req["model"]), 40))
        t.append(f" · {req['profile']} · seed {req['seed']} · device {req['device']}")
        if req.get("limit"):
            t.append(f" · limit {req['limit']}")
        if self.run_id is not None:
            t.append(f" · run #{self.run_id}")
        style = {"failed": "bold red", "cancelled": "bold magenta", "cancelling": "bold magenta",
                 "finished": "bold green"}.get(self.state, "bold yellow")
        t.append(f"  {self.state}", style=style)
        self.query_one("#run-title", Static).update(t, layout=False)
        q = Text("queue ")
        icons = {"queued": ("·", "dim"), "running": ("▶", "bold yellow"), "done": ("✓", "green"),
                 "failed": ("✗", "red"), "cancelled": ("■", "magenta")}
        for i, (label, status) in enumerate(self.queue_status.items()):
            icon, style = icons.get(status, ("?", ""))
            if i:
                q.append("  ")
            q.append(f"{icon} ", style=style)
            q.append_text(inert(label, 30))
            avg = self.queue_avg.get(label)
            if status == "done" and avg is not None:
                q.append(f" mean {avg:.1f}", style="green")
        self.query_one("#run-queue", Static).update(q, layout=False)

    def _render_progress(self) -> None:
        """done/total, tokens/s over the tokens streamed so far, elapsed and a counting-down ETA."""
        label = self.query_one("#gen-label", Static)
        p, totals = self.progress, self.totals
        if totals is None:
            label.update(Text(""))
            return
        total, cached = (p.total, p.cached) if p is not None else totals
        done = p.done if p is not None else cached
        self.query_one("#gen-bar", ProgressBar).update(total=max(1, total), progress=done)
        elapsed = self.elapsed
        if self.streamed and elapsed > 0:
            rate: float | None = self.streamed / elapsed
        else:
            rate = p.tokens_per_s if p is not None and p.tokens else None
        if done >= total:
            eta = "done"
        elif p is not None and p.eta_s is not None:
            eta = fmt_secs(max(0.0, p.eta_s - (self.clock() - self.progress_at)))
        else:
            eta = "estimating…"  # no generation has finished yet: nothing to extrapolate from
        label.update(Text(f"{done}/{total} · {cached} cached · {fmt_num(rate)} tok/s · "
                          f"{fmt_secs(elapsed)} elapsed · ETA {eta}"))

    def _render_scores(self) -> None:
        order = [d for d, _ in COLUMNS if d in self.scores] + [d for d in self.scores if d not in dict(COLUMNS)]
        widget = self.query_one("#scores", Static)
        if not order:
            widget.update(Text("scores appear here as verdicts arrive", style="dim"))
            return
        height = len(order) + 1
        resized = widget.styles.height is None or widget.styles.height.value != height
        widget.styles.height = height
        widget.update(score_table([self.scores[d] for d in order]), layout=resized)

    def _render_current(self) -> None:
        """The rows still generating: dimension, record, sample i/n when sampled, prompt, output so far."""
        widget = self.query_one("#current", Static)
        if not self.current:
            widget.update(Text("waiting for the next batch of prompts…" if self.running else "", style="dim"))
            return
        t = Text()
        items = list(self.current.items())
        for i, ((rid, s), item) in enumerate(items[:MAX_CURRENT]):
            if i:
                t.append("\n")
            t.append(f"{dim_title(item['dim'])} ", style="bold cyan")
            t.append_text(inert(rid, 40))
            if item.get("n", 1) > 1:
                t.append(f" · sample {s + 1}/{item['n']}", style="yellow")
            t.append("\n  ▸ ", style="dim")
            prompt = inert(item["prompt"], 90)
            prompt.stylize("dim")
            t.append_text(prompt)
            t.append("\n  ◂ ", style="bold")
            out = "".join(item["out"])
            out_flat = " ".join(strip_control(out).split())
            t.append_text(inert(out_flat[-200:] if len(out_flat) > 200 else out_flat))
        if len(items) > MAX_CURRENT:
            t.append(f"\n… and {len(items) - MAX_CURRENT} more rows generating in this batch", style="dim")
        widget.update(t, layout=False)  # fixed-size region: no relayout per batch
