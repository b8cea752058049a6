"""Browse cached runs read-only: runs → run → dimension → prompt → outputs, plus full-text search.

Every read opens a short-lived read-only handle in a thread worker and closes it at once, so a
run writing the same cache.db in another process is never blocked (WAL) and new rows appear on
refresh (`r`, or automatically every few seconds on the runs list).
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import ContentSwitcher, DataTable, Footer, Input, Static

from ...errors import CtrustError
from ...report import COLUMNS, build_rows, fmt
from ...seed_groups import group_label
from ...textsafe import strip_control
from ..widgets.render import (
    bar,
    dim_title,
    fmt_ci,
    fmt_num,
    fmt_rate,
    inert,
    score_style,
    verdict_badge,
)
from .base import CtrustScreen

ITEM_LIMIT = 500


def _short(s: str, n: int) -> str:
    s = strip_control(s)
    return s if len(s) <= n else s[: n - 1] + "…"


class BrowseScreen(CtrustScreen):
    NAV = "browse"
    HELP = "enter drills down: runs → dimensions → prompts → outputs"
    BINDINGS = [
        Binding("escape,backspace", "up", "Back", id="browse.up"),
        Binding("slash", "search", "Search", id="browse.search"),
        Binding("r", "refresh", "Refresh", id="browse.refresh"),
        Binding("y", "copy", "Copy output", id="browse.copy"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.run_id: int | None = None
        self.dimension: str | None = None
        self.items: dict[str, Any] = {}
        self.item: Any = None
        self.search_rows: list[dict[str, Any]] = []
        self.level = "runs"
        self._back_from_search = "runs"
        self._error_shown = False

    def compose(self) -> ComposeResult:
        yield self.nav()
        yield Static(id="crumbs", classes="crumbs")
        with ContentSwitcher(initial="runs", id="views"):
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="dims", cursor_type="row")
            yield DataTable(id="items", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="item"):
                yield Static(id="item-body")
            with Vertical(id="search"):
                yield Input(placeholder="search every cached output (words, quoted automatically)", id="search-input")
                yield DataTable(id="search-results", cursor_type="row", zebra_stripes=True)
        yield Static(id="browse-status", classes="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#runs", DataTable).add_columns("run", "model", "compression", "profile", "status", "gens",
                                                      "mean", "dims")
        self.query_one("#dims", DataTable).add_columns("dimension", "score", "0 ─ 100", "95% CI", "refusal", "n")
        self.query_one("#items", DataTable).add_columns("prompt id", "scenario", "verdict", "output")
        self.query_one("#search-results", DataTable).add_columns("compression", "prompt id", "dimension", "output")
        self._crumbs()
        self.load_runs()
        self.set_interval(3.0, self._poll_runs)  # not `_auto_refresh`: Textual's DOMNode owns that name

    # -- navigation -------------------------------------------------------------------------
    def _show(self, level: str) -> None:
        self.level = level
        self.query_one("#views", ContentSwitcher).current = level
        target = {"runs": "#runs", "dims": "#dims", "items": "#items", "item": "#item",
                  "search": "#search-input"}[level]
        self.query_one(target).focus()
        self._crumbs()

    def _crumbs(self) -> None:
        t = Text(" runs", style="bold" if self.level == "runs" else "")
        if self.level == "search":
            t.append("  ›  search outputs", style="bold")
        elif self.run_id is not None and self.level != "runs":
            t.append(f"  ›  run #{self.run_id}", style="bold" if self.level == "dims" else "")
            if self.dimension and self.level in ("items", "item"):
                t.append(f"  ›  {dim_title(self.dimension)}", style="bold" if self.level == "items" else "")
            if self.item is not None and self.level == "item":
                t.append("  ›  ")
                t.append_text(inert(self.item.record.id, 40))
        t.append("    enter open · esc back · / search · r refresh", style="dim")
        self.query_one("#crumbs", Static).update(t)

    def action_up(self) -> None:
        order = {"item": "items", "items": "dims", "dims": "runs"}
        if self.level == "search":
            self._show(self._back_from_search)
        elif self.level in order:
            self._show(order[self.level])

    def action_search(self) -> None:
        if self.level != "search":
            self._back_from_search = self.level
        self._show("search")

    def action_refresh(self) -> None:
        self.load_runs()
        if self.run_id is not None and self.level in ("dims", "items", "item"):
            self.load_dims(self.run_id)
        if self.level == "items" and self.run_id is not None and self.dimension:
            self.load_items(self.run_id, self.dimension)

    def _poll_runs(self) -> None:
        if self.level == "runs" and self.is_current:
            self.load_runs()

    def _status(self, text: str) -> None:
        self.query_one("#browse-status", Static).update(Text(text))

    # -- runs -------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="browse-runs", exit_on_error=False)
    def load_runs(self) -> None:
        try:
            with self.capp.read_store() as store:
                runs = store.runs()
                rows = build_rows(runs, store.scores([r.id for r in runs], rules=self.app.rules))
        except CtrustError as exc:
            self.app.call_from_thread(self._load_error, exc)
            return
        self.app.call_from_thread(self._fill_runs, rows)

    def _load_error(self, exc: CtrustError) -> None:
        self._status(str(exc))
        if not self._error_shown:  # one modal, then the status line keeps saying it
            self._error_shown = True
            self.capp.show_error(exc)

    def _fill_runs(self, rows: list[Any]) -> None:
        table = self.query_one("#runs", DataTable)
        with self.app.batch_update():
            keys = set()
            for row in rows:
                r = row.run
                key = str(r.id)
                keys.add(key)
                cells = [f"#{r.id}", inert(r.model_name, 28), inert(r.compression, 22), inert(r.profile),
                         Text(strip_control(r.shown_status), style=_status_style(r.shown_status)),
                         f"{r.done_generations}/{r.total_generations}",
                         _mean_cell(row), f"{len(row.scores)}/{len(r.dimensions)}"]
                if key in table.rows:
                    for col, value in zip(table.columns, cells):
                        if str(table.get_cell(key, col)) != str(value):
                            table.update_cell(key, col, value)
                else:
                    table.add_row(*cells, key=key)
            for key in [k.value for k in table.rows if k.value not in keys]:
                table.remove_row(key)
        n = len(rows)
        self._status(f"{n} run{'s' if n != 1 else ''} in {self.capp.db_path.name} (read-only view; "
                     "refreshes every 3 s)" if n else
                     f"no runs in {self.capp.db_path.name} yet — start one on Setup (3) or `ctrust run`")

    @on(DataTable.RowSelected, "#runs")
    def _open_run(self, event: DataTable.RowSelected) -> None:
        self.run_id = int(event.row_key.value)
        self.dimension = None
        self.query_one("#dims", DataTable).clear()
        self._show("dims")
        self.load_dims(self.run_id)

    # -- dimensions -------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="browse-dims", exit_on_error=False)
    def load_dims(self, run_id: int) -> None:
        with self.capp.read_store() as store:
            run = store.run(run_id)
            scores = {s.dimension: s for s in store.scores([run_id], rules=self.app.rules)}
        self.app.call_from_thread(self._fill_dims, run, scores)

    def _fill_dims(self, run: Any, scores: dict[str, Any]) -> None:
        if run is None:
            self._status("run not found (deleted?)")
            return
        table = self.query_one("#dims", DataTable)
        cursor = table.cursor_row
        table.clear()
        order = [d for d, _ in COLUMNS if d in run.dimensions] + [d for d in run.dimensions if d not in dict(COLUMNS)]
        for d in order:
            s = scores.get(d)
            title = dim_title(d)
            if s is None:
                table.add_row(title, "—", bar(None, 16), "", "", "0", key=d)
                continue
            name = Text(title)
            if s.final:
                name.append(" ✓", style="green")
            table.add_row(name, Text(fmt_num(s.score), style=score_style(s.score)), bar(s.score, 16),
                          fmt_ci((s.ci_low, s.ci_high) if s.ci_low is not None else None),
                          fmt_rate(s.refusal_rate), f"{s.n}/{s.total}" if s.total else str(s.n), key=d)
        if cursor < table.row_count:
            table.move_cursor(row=cursor)
        info = Text(f"run #{run.id} · ")
        info.append_text(inert(f"{run.model_name} · {run.compression} · {run.profile} · seed {run.seed} · "
                               f"{run.shown_status}"))
        if group_label(run):  # one of K calibration seeds of `ctrust run --calib-seeds K`
            info.append_text(inert(f" · {group_label(run)}"))
        if run.scorer:
            info.append_text(inert(f" · toxicity scorer {run.scorer}"))
        if run.error:
            info.append_text(inert(f" · error: {run.error}", 120))
        self.query_one("#browse-status", Static).update(info)

    @on(DataTable.RowSelected, "#dims")
    def _open_dim(self, event: DataTable.RowSelected) -> None:
        assert self.run_id is not None
        self.dimension = str(event.row_key.value)
        self.query_one("#items", DataTable).clear()
        self._show("items")
        self.load_items(self.run_id, self.dimension)

    # -- prompts ----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="browse-items", exit_on_error=False)
    def load_items(self, run_id: int, dimension: str) -> None:
        with self.capp.read_store() as store:
            items = store.run_items(run_id, dimension, limit=ITEM_LIMIT, rules=self.app.rules)
        self.app.call_from_thread(self._fill_items, items)

    def _fill_items(self, items: list[Any]) -> None:
        table = self.query_one("#items", DataTable)
        table.clear()
        self.items = {}
        for it in items:
            key = it.prompt_key
            self.items[key] = it
            out = it.outputs[0] if it.outputs else ""
            table.add_row(inert(it.record.id, 30), inert(it.record.scenario, 18),
                          verdict_badge(it.verdict.to_dict() if it.verdict else None), inert(out, 60), key=key)
        more = " (first 500)" if len(items) >= ITEM_LIMIT else ""
        self._status(f"{len(items)} prompts{more} · enter shows the prompt and every output")

    @on(DataTable.RowSelected, "#items")
    def _open_item(self, event: DataTable.RowSelected) -> None:
        self.item = self.items.get(str(event.row_key.value))
        if self.item is None:
            return
        self.query_one("#item-body", Static).update(item_text(self.item))
        self._show("item")

    def action_copy(self) -> None:
        if self.level == "item" and self.item is not None and self.item.outputs:
            self.app.copy_to_clipboard(strip_control("\n\n".join(self.item.outputs)))
            self.notify("output copied to the clipboard (OSC 52)", timeout=2)
        elif self.level == "search":
            row = self._search_row()
            if row is not None:
                self.app.copy_to_clipboard(strip_control(row["output"] or ""))
                self.notify("output copied to the clipboard (OSC 52)", timeout=2)
        else:
            self.notify("open a prompt (enter) to copy its output", severity="warning", timeout=2)

    # -- search -----------------------------------------------------------------------------
    @on(Input.Submitted, "#search-input")
    def _submit_search(self, event: Input.Submitted) -> None:
        self.run_search(event.value)

    @work(thread=True, exclusive=True, group="browse-search", exit_on_error=False)
    def run_search(self, query: str) -> None:
        with self.capp.read_store() as store:
            rows = store.search(query, limit=200)
        self.app.call_from_thread(self._fill_search, query, rows)

    def _fill_search(self, query: str, rows: list[dict[str, Any]]) -> None:
        table = self.query_one("#search-results", DataTable)
        table.clear()
        self.search_rows = rows
        for i, r in enumerate(rows):
            table.add_row(inert(r["compression"] or "", 20), inert(r["record_id"] or "", 30),
                          inert(r["dimension"] or ""), inert(r["output"] or "", 60), key=str(i))
        self._status(f"{len(rows)} outputs match “{_short(query, 40)}”")
        if rows:
            table.focus()

    def _search_row(self) -> dict[str, Any] | None:
        table = self.query_one("#search-results", DataTable)
        if not self.search_rows or table.cursor_row >= len(self.search_rows):
            return None
        return self.search_rows[table.cursor_row]

    @on(DataTable.RowSelected, "#search-results")
    def _open_search(self, event: DataTable.RowSelected) -> None:
        from ..widgets.modals import TextModal

        r = self.search_rows[int(event.row_key.value)]
        body = Text()
        body.append("compression  ", style="bold")
        body.append_text(inert(r["compression"] or ""))
        body.append("\nprompt       ", style="bold")
        body.append_text(inert(r["record_id"] or ""))
        body.append("\n\n")
        body.append_text(inert(r["output"] or ""))
        self.app.push_screen(TextModal("search result", body, r["output"] or ""))


def _mean_cell(row: Any) -> Text:
    """The paper's Avg of 9 when all nine are scored, else the mean of what is there (marked ~)."""
    if row.avg is not None:
        return Text(fmt(row.avg), style=score_style(row.avg))
    vals = [s.score for s in row.scores.values() if s.score is not None]
    if not vals:
        return Text("—", style="dim")
    m = sum(vals) / len(vals)
    return Text(f"~{fmt(m)}", style=score_style(m))


def _status_style(status: str) -> str:
    return {"finished": "green", "running": "yellow", "failed": "red", "cancelled": "magenta",
            "interrupted": "magenta"}.get(status, "")


def item_text(item: Any) -> Text:
    """Prompt messages, every output, and the verdict, all inert."""
    rec = item.record
    t = Text()
    t.append("prompt ", style="bold")
    t.append_text(inert(f"{rec.id}  ({rec.dimension} / {rec.scenario})"))
    t.append("\n")
    for m in rec.messages:
        t.append(f"\n[{m.role}]\n", style="bold cyan")
        t.append_text(inert(m.content))
        t.append("\n")
    t.append("\nverdict ", style="bold")
    t.append_text(verdict_badge(item.verdict.to_dict() if item.verdict else None))
    if item.verdict is not None:
        t.append("\n")
        t.append_text(inert(json.dumps(item.verdict.to_dict(), ensure_ascii=False)))
    if rec.context.get("label") is not None:
        t.append("\ngold label ", style="bold")
        t.append_text(inert(str(rec.context.get("label"))))
    for i, out in enumerate(item.outputs):
        t.append(f"\n\noutput {i + 1}/{len(item.outputs)}\n", style="bold magenta")
        t.append_text(inert(out))
    if not item.outputs:
        t.append("\n\n(no output cached for this prompt yet)", style="dim")
    return t
