"""Minimal app shell: lists the runs in the cache with their scores (full app: later screens)."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header, Static

from ..report import COLUMNS, build_rows, fmt
from ..store import open_store
from ..textsafe import safe_text


class CtrustApp(App):
    TITLE = "ctrust"
    SUB_TITLE = "what compression does to trust"
    BINDINGS = [("q", "quit", "Quit"), ("r", "refresh", "Refresh")]

    def __init__(self, db_path: Path, models_dir: Path, readonly: bool = False) -> None:
        super().__init__()
        self.db_path = db_path
        self.models_dir = models_dir
        self.readonly = readonly

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="status")
        yield DataTable(id="runs", zebra_stripes=True, cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_columns("run", "model", "compression", "profile", "status", *[t for _, t in COLUMNS], "Avg")
        status = self.query_one("#status", Static)
        if not self.db_path.exists():
            status.update(safe_text(f"no cache at {self.db_path} yet — run `ctrust run` to create one"))
            return
        with open_store(self.db_path, readonly=True) as store:
            runs = store.runs()
            rows = build_rows(runs, store.scores([r.id for r in runs]))
        status.update(safe_text(f"{len(runs)} runs in {self.db_path}"))
        for row in rows:
            r = row.run
            cells = [f"#{r.id}", safe_text(r.model_name), safe_text(r.compression), safe_text(r.profile),
                     safe_text(r.status)]
            cells += [fmt(row.scores[d].score) if d in row.scores else "" for d, _ in COLUMNS]
            cells.append(fmt(row.avg))
            table.add_row(*cells, key=str(r.id))


def run_app(db_path: Path, models_dir: Path, readonly: bool = False) -> None:
    CtrustApp(db_path, models_dir, readonly).run()
