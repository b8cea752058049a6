"""Untrusted text is inert everywhere it is shown; the app module never imports torch."""

from __future__ import annotations

import subprocess
import sys

from rich.text import Text
from tui_fixtures import HOSTILE, fake_factory, make_models
from tui_helpers import wait_for

from ctrust_tui.compress.spec import parse_specs
from ctrust_tui.events import GenerationFinished, PromptsStarted, RunStarted, TokensGenerated
from ctrust_tui.runner import RunConfig, Runner
from ctrust_tui.tui.app import CtrustApp

EVIL = " ".join(HOSTILE)


def _content(widget):
    """What a Static shows: Textual Content (or Rich Text), with its spans."""
    body = widget.render()
    return getattr(body, "_renderable", body)


def _assert_inert(text) -> None:
    plain = text if isinstance(text, str) else text.plain
    assert "\x1b" not in plain and "\x07" not in plain
    assert "[bold red]x[/]" in plain
    assert "[link=file:///etc/passwd]x[/link]" in plain
    if not isinstance(text, str):
        for span in text.spans:
            style = str(span.style)
            assert "link" not in style and "file://" not in style


def _assert_screen_clean(app) -> None:
    svg = app.export_screenshot()
    assert "\x1b" not in svg and "SGVsbG8" not in svg
    assert "file:///etc/passwd" in svg  # shown literally, as text
    assert "<a " not in svg  # ...and never as a link


async def test_hostile_outputs_are_literal_in_browse_and_search(tmp_path):
    models = make_models(tmp_path)
    db = tmp_path / "cache.db"
    cfg = RunConfig(model="fake-model", compressions=parse_specs("none"), dimensions=("ethics",), profile="smoke",
                    db_path=db, models_dir=models, limit=2)
    Runner(cfg, lambda e: None, backend_factory=fake_factory(script=lambda r: EVIL)).execute()
    app = CtrustApp(db, models, readonly=True)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        runs = screen.query_one("#runs")
        await wait_for(pilot, lambda: runs.row_count == 1)
        runs.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.query_one("#dims").row_count == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.query_one("#items").row_count == 2)
        cell = screen.query_one("#items").get_row_at(0)[3]
        assert isinstance(cell, Text) and "\x1b" not in cell.plain
        await pilot.press("enter")
        _assert_inert(_content(screen.query_one("#item-body")))
        _assert_screen_clean(app)
        await pilot.press("escape", "escape", "escape", "slash")
        await pilot.press(*"passwd")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.query_one("#search-results").row_count > 0)
        await pilot.press("enter")
        assert type(app.screen).__name__ == "TextModal"
        _assert_inert(_content(app.screen.query("Static").last()))
        _assert_screen_clean(app)


async def test_hostile_stream_is_literal_on_the_run_screen(tmp_path):
    app = CtrustApp(tmp_path / "cache.db", make_models(tmp_path), backend_factory=fake_factory())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        run = app.screen
        run.request = {"model": EVIL, "profile": "smoke", "seed": 0, "device": "cpu", "limit": None,
                       "compressions": ()}
        run.apply_events([
            RunStarted(1, EVIL, "none", ("ethics",), "smoke", 1, 0, False),
            PromptsStarted(1, (("ethics/x/0", 0, "ethics", EVIL),)),
            TokensGenerated(1, (("ethics/x/0", 0, HOSTILE[0]), ("ethics/x/0", 0, " " + " ".join(HOSTILE[1:])))),
        ])
        await pilot.pause()
        _assert_inert(_content(run.query_one("#current")))  # while streaming
        run.apply_events([
            GenerationFinished(1, "ethics/x/0", "ethics", "x", EVIL, (EVIL,), {"verdict": EVIL, "refusal": False},
                               False),
        ])
        await pilot.pause()
        history = "\n".join(run.query_one("#history").lines)
        assert "\x1b" not in history and "[link=file:///etc/passwd]x[/link]" in history
        _assert_screen_clean(app)


def test_importing_the_app_does_not_import_torch():
    code = ("import sys, ctrust_tui.tui.app, ctrust_tui.tui.screens.browse, ctrust_tui.tui.screens.compare, "
            "ctrust_tui.tui.screens.setup, ctrust_tui.tui.screens.run, ctrust_tui.tui.screens.inspect; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
