"""Compare 2+ runs of one model: dimensions × runs with paired deltas vs a baseline, a bar chart,
the prompts whose verdict flipped, and every run's outputs side by side."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import ContentSwitcher, DataTable, Footer, Label, SelectionList, Static

from ...compare import compare_format, compare_runs
from ...errors import CtrustError
from ...recommend import failing_text, recommend
from ...report import COLUMNS
from ...stats_view import delta_style, verdict_style
from ...textsafe import strip_control
from ...trust.noninferiority import DEFAULT_MARGIN, Margins
from ..widgets.fit import FitWidth
from ..widgets.modals import TextModal
from ..widgets.render import bar, dim_title, fmt_num, inert, verdict_badge
from .base import CtrustScreen

PALETTE = ("cyan", "magenta", "yellow", "green", "blue", "red")
MARGIN_STEPS = (1.0, 2.0, 3.0, 5.0, 10.0)  # `m` cycles the non-inferiority margin (score points)
SHORT_VERDICT = {"non-inferior": "non-inferior", "inferior": "inferior", "inconclusive": "inconclusive",
                 "too few prompts": "too few"}


def run_label(run: Any, width: int = 40) -> Text:
    t = Text(f"#{run.id} ")
    t.append_text(inert(run.compression, width))
    t.append(" ")
    t.append_text(inert(f"{run.profile} · {run.model_name}", width))
    t.stylize("dim", len(f"#{run.id} ") + len(strip_control(run.compression)))
    return t


class SideBySide(ModalScreen[None]):
    """One prompt's outputs from every compared run, side by side."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close", id="sbs.close"),
                Binding("y", "copy", "Copy focused output", id="sbs.copy")]

    def __init__(self, record: Any, columns: list[tuple[Any, Any]]) -> None:
        super().__init__(classes="modal")
        self.record = record
        self.columns = columns  # (run, ItemRow | None)

    def compose(self) -> ComposeResult:
        with Vertical(id="text-dialog"):
            head = Text("prompt ", style="bold")
            head.append_text(inert(f"{self.record.id} ({self.record.scenario})"))
            yield Label(head)
            yield Static(inert(self.record.user_text, 400), classes="status")
            with Horizontal(classes="side-by-side"):
                for i, (run, item) in enumerate(self.columns):
                    with VerticalScroll(id=f"sbs-{i}", can_focus=True) as pane:
                        pane.border_title = f"#{run.id} {strip_control(run.compression)}"
                        t = Text()
                        t.append_text(verdict_badge(item.verdict.to_dict() if item and item.verdict else None))
                        for j, out in enumerate(item.outputs if item else ()):
                            t.append(f"\n\noutput {j + 1}\n" if len(item.outputs) > 1 else "\n\n", style="dim")
                            t.append_text(inert(out))
                        if not item or not item.outputs:
                            t.append("\n\n(no output cached)", style="dim")
                        yield Static(t)

    def on_mount(self) -> None:
        self.query_one("#sbs-0").focus()

    def action_copy(self) -> None:
        focused = self.focused
        idx = 0
        if focused is not None and focused.id and focused.id.startswith("sbs-"):
            idx = int(focused.id[4:])
        run, item = self.columns[idx]
        if item and item.outputs:
            self.app.copy_to_clipboard(strip_control("\n\n".join(item.outputs)))
            self.notify(f"output of #{run.id} copied (OSC 52)", timeout=2)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss()


def decision_text(rec: Any) -> Text:
    """The recommendation as lines: the summary, then every spec, most compressed first."""
    chosen = {c.run_id for c in rec.chosen}
    rejected = {c.run_id for c in rec.rejected}
    t = Text()
    t.append_text(inert(rec.summary, 400))
    t.append(f"\n\n{rec.rules} rules, {100 * (1 - rec.alpha):.0f}% paired intervals, base #{rec.base_run}\n",
             style="dim")
    for c in rec.candidates:
        t.append("\n")
        t.append_text(inert(c.spec, 40))
        t.append(f"  #{c.run_id} · {c.bits:.2f} bits/weight · {c.sparsity:.0%} sparse  ", style="dim")
        if c.run_id in chosen:
            t.append("recommended" + (" (tie)" if len(chosen) > 1 else ""), style="bold green")
        elif c.run_id in rejected:
            t.append("rejected", style="bold red")
            for x in c.failing:
                t.append("\n    ")
                t.append_text(inert(failing_text(x), 200))
        else:
            t.append("qualifies, less compressed" if c.qualifies else "less compressed", style="dim")
    return t


class CompareScreen(CtrustScreen):
    NAV = "compare"
    HELP = ("space picks runs; enter on a dimension lists the prompts whose verdict flipped, enter on a "
            "prompt shows every run's output side by side, f on a prompt shows where the outputs part and "
            "each model's top-5 next tokens there (flip forensics); g shows each score against the compression")
    BINDINGS = [
        Binding("b", "baseline", "Baseline", id="compare.baseline"),
        Binding("g", "graph", "Trust vs compression", id="compare.graph"),
        Binding("r", "refresh", "Refresh", id="compare.refresh"),
        Binding("m", "margin", "Margin", id="compare.margin"),
        Binding("d", "decide", "Recommend", id="compare.decide"),
        Binding("f", "forensics", "Flip forensics", id="compare.forensics", show=False),  # flips view says so
        Binding("escape", "back", "Back", id="compare.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[int, Any] = {}
        self.baseline: int | None = None
        self.selected: list[int] = []
        self.flip_dim: str | None = None
        self.flip_rows: list[tuple[Any, list[tuple[Any, Any]]]] = []
        self._auto_selected = False
        self.margin = DEFAULT_MARGIN

    def compose(self) -> ComposeResult:
        yield self.nav()
        with Horizontal(id="compare-top"):
            yield SelectionList[int](id="run-picker")
            with Vertical(id="compare-right"):
                yield DataTable(id="compare-table", cursor_type="row")
                with ContentSwitcher(initial="chart-scroll", id="compare-views"):
                    with VerticalScroll(id="chart-scroll"):
                        yield Static(id="chart")
                    with VerticalScroll(id="plot-scroll"):
                        yield Static(id="plot")
                    yield DataTable(id="flips", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="flip-detail"):
                    yield Static(id="forensics")
        yield Static(id="compare-status", classes="status")
        yield Footer()

    def on_mount(self) -> None:
        picker = self.query_one("#run-picker", SelectionList)
        picker.border_title = "runs: space picks, b baseline"
        self.query_one("#flip-detail").display = False
        self.load_runs()

    def _status(self, text: Text | str) -> None:
        self.query_one("#compare-status", Static).update(text if isinstance(text, Text) else Text(text))

    def action_refresh(self) -> None:
        self.load_runs()

    def on_screen_resume(self) -> None:
        self.load_runs()

    # -- run list -----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="compare-runs", exit_on_error=False)
    def load_runs(self) -> None:
        try:
            with self.capp.read_store() as store:
                runs = store.runs()
        except CtrustError as exc:
            self.app.call_from_thread(self._status, str(exc))
            return
        self.app.call_from_thread(self._fill_runs, runs)

    def _fill_runs(self, runs: list[Any]) -> None:
        picker = self.query_one("#run-picker", SelectionList)
        known = set(self.runs)
        self.runs = {r.id: r for r in runs}
        if not self._auto_selected and runs:
            base = runs[0].model_name.split("--")[0]
            same = sorted((r for r in runs if r.model_name.split("--")[0] == base), key=lambda r: r.id)[:4]
            self.selected = [r.id for r in same]
            dense = [r.id for r in same if r.compression.split("@")[0] == "none"]
            self.baseline = dense[0] if dense else (self.selected[0] if self.selected else None)
            self._auto_selected = True
        if set(self.runs) != known or picker.option_count != len(runs):
            with self.app.batch_update():
                picker.clear_options()
                for r in sorted(runs, key=lambda r: r.id):
                    picker.add_option((run_label(r, 36), r.id, r.id in self.selected))
        if not runs:
            self._status("no runs yet: a comparison needs 2+ runs of one model (Setup, 3)")
            return
        self.recompute()

    @on(SelectionList.SelectedChanged, "#run-picker")
    def _picked(self, event: SelectionList.SelectedChanged) -> None:
        sel = sorted(event.selection_list.selected)
        if sel == sorted(self.selected):
            return
        self.selected = sel
        if self.baseline not in sel:
            self.baseline = sel[0] if sel else None
        self.recompute()

    def action_baseline(self) -> None:
        picker = self.query_one("#run-picker", SelectionList)
        if picker.highlighted is None:
            return
        rid = picker.get_option_at_index(picker.highlighted).value
        if rid not in self.selected:
            picker.select(rid)
            self.selected = sorted(set(self.selected) | {rid})
        self.baseline = rid
        self.recompute()

    def action_margin(self) -> None:
        """Cycle the non-inferiority margin (score points) through MARGIN_STEPS."""
        steps = MARGIN_STEPS
        self.margin = steps[(steps.index(self.margin) + 1) % len(steps)] if self.margin in steps else steps[0]
        self.recompute()

    def action_decide(self) -> None:
        """`ctrust recommend` on the picked runs: the most compressed variant non-inferior everywhere."""
        others = [r for r in self.selected if r != self.baseline]
        if self.baseline is None or len(others) < 2:
            self.notify("pick the dense baseline and 2+ compressed runs of it to get a recommendation", timeout=4)
            return
        self.decide(self.baseline, others, self.margin)

    @work(thread=True, exclusive=True, group="compare-decide", exit_on_error=False)
    def decide(self, baseline: int, others: list[int], margin: float) -> None:
        try:
            with self.capp.read_store() as store:
                rec = recommend(store, baseline, others, margins=Margins(margin), rules=self.app.rules)
        except CtrustError as exc:
            self.app.call_from_thread(self.notify, strip_control(str(exc)), severity="error", timeout=6)
            return
        self.app.call_from_thread(self.app.push_screen, TextModal("recommendation", decision_text(rec),
                                                                  strip_control(rec.summary)))

    def action_graph(self) -> None:
        """Toggle the bars and the trust-vs-compression plot (x: bits per weight or sparsity)."""
        views = self.query_one("#compare-views", ContentSwitcher)
        views.current = "chart-scroll" if views.current == "plot-scroll" else "plot-scroll"

    def action_back(self) -> None:
        views = self.query_one("#compare-views", ContentSwitcher)
        self.query_one("#flip-detail").display = False
        if views.current in ("flips", "plot-scroll"):
            views.current = "chart-scroll"
            self.query_one("#compare-table").focus()

    # -- table + chart ------------------------------------------------------------------------
    def recompute(self) -> None:
        if self.baseline is None or len(self.selected) < 2:
            self.query_one("#compare-table", DataTable).clear(columns=True)
            self.query_one("#chart", Static).update(Text("pick 2+ runs of the same model (space)", style="dim"))
            self._status("pick 2 or more runs of the same model (space); b makes the highlighted run the baseline")
            return
        others = [r for r in self.selected if r != self.baseline]
        self.compute(self.baseline, others, self.margin)

    @work(thread=True, exclusive=True, group="compare-compute", exit_on_error=False)
    def compute(self, baseline: int, others: list[int], margin: float = DEFAULT_MARGIN) -> None:
        pairs: dict[int, dict[str, Any]] = {}
        splits: dict[int, dict[str, Any]] = {}
        errors: list[str] = []
        rules = self.app.rules
        with self.capp.read_store() as store:
            scores: dict[int, dict[str, Any]] = {}
            for s in store.scores([baseline, *others], rules=rules):
                scores.setdefault(s.run_id, {})[s.dimension] = s
            for other in others:
                try:
                    pairs[other] = {c.dimension: c for c in compare_runs(store, baseline, other, rules=rules,
                                                                         margins=Margins(margin))}
                except CtrustError as exc:
                    errors.append(str(exc))
                    continue
                if rules == "paper":  # the format split explains paper-rule deltas
                    try:
                        splits[other] = {sp.dimension: sp for sp in compare_format(store, baseline, other, n_boot=0)}
                    except CtrustError:
                        pass  # a run without robust verdicts: deltas still shown, without the split
        self.app.call_from_thread(self._show_comparison, baseline, [o for o in others if o in pairs], scores,
                                  pairs, errors, splits)

    def _show_comparison(self, baseline: int, others: list[int], scores: dict[int, dict[str, Any]],
                         pairs: dict[int, dict[str, Any]], errors: list[str],
                         splits: dict[int, dict[str, Any]] | None = None) -> None:
        self.pairs = pairs
        splits = splits or {}
        self.shown = [baseline, *others]
        table = self.query_one("#compare-table", DataTable)
        base_run = self.runs.get(baseline)
        dims = [d for d, _ in COLUMNS if base_run and d in base_run.dimensions]
        heads: list[tuple[str, Text]] = [("dim", Text("dimension"))]
        heads.append((str(baseline), Text(f"#{baseline} {strip_control(self.runs[baseline].compression)} (base)")))
        heads += [(str(o), Text(f"#{o} {strip_control(self.runs[o].compression)}")) for o in others]
        heads.append(("flips", Text("flips")))
        heads += [(f"verdict-{o}", Text(f"#{o} ±{self.margin:g}" if len(others) > 1
                                        else f"verdict (margin {self.margin:g})")) for o in others]
        rows: list[list[Text]] = []
        for d in dims:
            b = scores.get(baseline, {}).get(d)
            cells: list[Text] = [Text(dim_title(d)), Text(fmt_num(b.score if b else None))]
            flips = 0
            for o in others:
                c = pairs[o].get(d)
                s = scores.get(o, {}).get(d)
                if c is None:
                    cells.append(Text(fmt_num(s.score if s else None), style="dim"))
                    continue
                flips += c.flipped
                cell = Text(fmt_num(c.score_b))
                if c.delta is not None:
                    mark = "*" if c.significant else " "
                    cell.append(f" {c.delta:+.1f}{mark}", style=delta_style(c.delta, c.significant))
                sp = splits.get(o, {}).get(d)
                if sp is not None and sp.formats:  # the part of the delta that is only lost format
                    cell.append(f" fmt {sp.formats:+.1f}", style="italic yellow")
                cells.append(cell)
            cells.append(Text(str(flips)))
            for o in others:
                c = pairs[o].get(d)
                cells.append(self._verdict_cell(c.decision if c is not None else None))
            rows.append(cells)
        with self.app.batch_update():
            cursor = table.cursor_row
            table.clear(columns=True)
            # explicit widths: auto-width columns rebuilt while a rebuild is pending can keep a stale width
            for i, (key, head) in enumerate(heads):
                table.add_column(head, key=key, width=max([head.cell_len, *(r[i].cell_len for r in rows)]))
            for d, cells in zip(dims, rows, strict=True):
                table.add_row(*cells, key=d)
            if cursor < table.row_count:
                table.move_cursor(row=cursor)
        self._chart(dims, scores)
        self._plot(dims, scores)
        msg = Text(f"{self.app.rules} rules (R switches) · Δ = run − baseline on shared prompts; ")
        msg.append("* ", style="bold")
        msg.append("95% interval excludes zero; green = more trustworthy; ")
        msg.append(f"verdict: is the variant at most {self.margin:g} points worse (m changes the margin)? "
                   "+N = further prompts likely to settle it")
        if splits:
            msg.append("; fmt = part of Δ from format failures (answers only the robust parser reads)",
                       style="italic yellow")
        msg.append(". enter on a dimension lists flipped prompts")
        if errors:
            msg = Text("; ".join(strip_control(e) for e in errors), style="bold red")
        self._status(msg)

    @staticmethod
    def _verdict_cell(decision: Any) -> Text:
        if decision is None:
            return Text("")
        t = Text(SHORT_VERDICT.get(decision.verdict, decision.verdict), style=verdict_style(decision.verdict))
        if decision.verdict == "inconclusive" and decision.settle:
            t.append(f" {decision.settle}", style="dim")
        return t

    def _plot(self, dims: list[str], scores: dict[int, dict[str, Any]]) -> None:
        from ...chart import trust_vs_compression
        from ..widgets.plot import trust_plot

        runs = [self.runs[r] for r in self.shown if r in self.runs]
        rows = [s for r in self.shown for d, s in scores.get(r, {}).items() if d in dims]
        panels = trust_vs_compression(runs, rows)
        # built for the width it is drawn at, minus a scrollbar's column
        self.query_one("#plot", Static).update(FitWidth(lambda w: trust_plot(panels, max(30, w - 2))))

    def _chart(self, dims: list[str], scores: dict[int, dict[str, Any]]) -> None:
        shown = [(rid, strip_control(self.runs[rid].compression)[:14]) for rid in self.shown]

        def bars(room: int) -> Text:
            width = max(8, min(40, room - 24))  # label (17) and value (6) beside the bar
            t = Text()
            for d in dims:
                t.append(f"{dim_title(d)}\n", style="bold")
                for i, (rid, label) in enumerate(shown):
                    s = scores.get(rid, {}).get(d)
                    val = s.score if s else None
                    color = PALETTE[i % len(PALETTE)]
                    t.append(f"  {label:<14} ", style=color)
                    t.append_text(bar(val, width, style=color))
                    t.append(f" {fmt_num(val):>5}\n")
            return t

        self.query_one("#chart", Static).update(FitWidth(bars))

    # -- flips ---------------------------------------------------------------------------------
    @on(DataTable.RowSelected, "#compare-table")
    def _open_dimension(self, event: DataTable.RowSelected) -> None:
        self.flip_dim = str(event.row_key.value)
        self.load_flips(self.flip_dim, list(self.shown))

    @work(thread=True, exclusive=True, group="compare-flips", exit_on_error=False)
    def load_flips(self, dim: str, shown: list[int]) -> None:
        flipped: list[str] = []
        for o in shown[1:]:
            c = self.pairs.get(o, {}).get(dim)
            if c is not None:
                flipped += [i for i in c.flipped_ids if i not in flipped]
        items: dict[int, dict[str, Any]] = {}
        with self.capp.read_store() as store:
            for rid in shown:
                items[rid] = {it.record.id: it for it in store.run_items(rid, dim, rules=self.app.rules)}
        rows = []
        for rec_id in flipped:
            base_item = items[shown[0]].get(rec_id)
            record = base_item.record if base_item else next(
                (items[r][rec_id].record for r in shown if rec_id in items[r]), None)
            if record is None:
                continue
            rows.append((record, [(self.runs[r], items[r].get(rec_id)) for r in shown]))
        self.app.call_from_thread(self._show_flips, dim, shown, rows)

    def _show_flips(self, dim: str, shown: list[int], rows: list[Any]) -> None:
        self.flip_rows = rows
        table = self.query_one("#flips", DataTable)
        table.clear(columns=True)
        table.add_column("prompt id")
        for rid in shown:
            table.add_column(Text(f"#{rid} {strip_control(self.runs[rid].compression)}"))
        for i, (record, cols) in enumerate(rows):
            table.add_row(inert(record.id, 30),
                          *[verdict_badge(it.verdict.to_dict() if it and it.verdict else None) for _, it in cols],
                          key=str(i))
        self.query_one("#compare-views", ContentSwitcher).current = "flips"
        table.focus()
        self.query_one("#flip-detail").display = False
        self._status(f"{len(rows)} {dim_title(dim)} prompts flipped verdict vs the baseline · enter shows the "
                     "outputs side by side · f flip forensics · esc back")

    @on(DataTable.RowSelected, "#flips")
    def _open_flip(self, event: DataTable.RowSelected) -> None:
        record, cols = self.flip_rows[int(event.row_key.value)]
        self.app.push_screen(SideBySide(record, cols))

    # -- flip forensics ------------------------------------------------------------------------
    def action_forensics(self) -> None:
        """Where the highlighted flip's outputs part, and each model's top-5 there (computed in a worker)."""
        table = self.query_one("#flips", DataTable)
        if self.query_one("#compare-views", ContentSwitcher).current != "flips" or not self.flip_rows:
            self.notify("open a dimension's flipped prompts first (enter on a dimension), then f on a prompt",
                        timeout=4)
            return
        record, cols = self.flip_rows[min(table.cursor_row, len(self.flip_rows) - 1)]
        base_run, base_item = cols[0]
        if base_item is None:
            self.notify("the baseline has no output for this prompt", severity="warning", timeout=4)
            return
        self._show_forensics(Text("computing flip forensics (loads each model once)…", style="dim"))
        self.forensics(record, cols, self.flip_dim or record.dimension)

    def _show_forensics(self, text: Text) -> None:
        self.query_one("#forensics", Static).update(text)
        self.query_one("#flip-detail").display = True

    @work(thread=True, exclusive=True, group="compare-forensics", exit_on_error=False)
    def forensics(self, record: Any, cols: list[tuple[Any, Any]], dim: str) -> None:
        from ...forensics import NEAR_TIE, Flip, cached_forensics, compute_forensics
        from ...tables import forensics_text
        from ..app import describe_error

        def verdict(it: Any) -> str | None:
            return it.verdict.verdict if it is not None and it.verdict else None

        (base_run, base_item), others = cols[0], cols[1:]
        out = Text()
        for run, item in others:
            if item is None or verdict(item) == verdict(base_item):
                continue
            flip = Flip(dim, record, base_item.prompt_key, verdict(base_item), verdict(item))
            try:
                if self.app.readonly:  # browse stays torch-free: only what `ctrust compare --forensics` cached
                    with self.capp.read_store() as store:
                        got = cached_forensics(store, base_run.id, run.id, [flip]).get(flip.prompt_key)
                    if got is None:
                        raise CtrustError(f"not computed yet; run `ctrust compare {base_run.id} {run.id} --forensics` "
                                          "or open the full app (`ctrust`)")
                else:
                    got = compute_forensics(self.capp.db_path, self.capp.models_dir, base_run.id, run.id, [flip],
                                            on_progress=lambda m: self.app.call_from_thread(self._status, m)
                                            ).get(flip.prompt_key)
                body = forensics_text(got, base_run.id, run.id)
            except Exception as exc:  # a missing model folder, out of memory: one line in the pane
                title, message = describe_error(exc)
                body = Text(strip_control(f"{title}: {message}" if not isinstance(exc, CtrustError) else message),
                            style="red")
            if out:
                out.append("\n\n")
            out.append(f"#{base_run.id} → #{run.id} ", style="bold")
            out.append_text(inert(record.id, 40))
            out.append("\n")
            out.append_text(body)
        if not out:
            out = Text("no compared run's verdict differs from the baseline's here", style="dim")
        self.app.call_from_thread(self._show_forensics, out)
        self.app.call_from_thread(self._status, f"flip forensics: near-tie = the baseline preferred its token by under "
                                  f"{100 * NEAR_TIE:g} probability points; esc back")
