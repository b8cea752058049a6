"""The help screen is generated from the bindings the app runs, so it cannot drift from them."""

from __future__ import annotations

from tui_fixtures import fake_factory
from tui_helpers import rendered

from ctrust_tui.tui.app import CtrustApp
from ctrust_tui.tui.screens.inspect import InspectScreen
from ctrust_tui.tui.screens.run import RunScreen
from ctrust_tui.tui.screens.setup import SetupScreen


async def test_help_lists_every_screen_binding_with_its_real_key(tmp_path, models_dir):
    app = CtrustApp(tmp_path / "cache.db", models_dir, backend_factory=fake_factory())
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.press("question_mark")
        assert type(app.screen).__name__ == "HelpScreen"
        text = "\n".join(rendered(s) for s in app.screen.query("Static"))
        lines = [" ".join(line.split()) for line in text.splitlines()]
        assert "esc Stop" in lines, "Inspect stops with escape (the old help said x)"
        assert not any(line.endswith("x stop") for line in lines)
        for screen in (SetupScreen, RunScreen, InspectScreen):
            for b in screen.BINDINGS:
                assert b.description in text, b
        assert "1 / 2 / 3 / 4 / 5 switch screen (Browse, Compare, Setup, Run, Inspect)" in lines


async def test_read_only_help_lists_only_the_browsing_screens(fixture_db, models_dir):
    app = CtrustApp(fixture_db, models_dir, readonly=True)
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.press("question_mark")
        text = "\n".join(rendered(s) for s in app.screen.query("Static"))
        assert "switch screen (Browse, Compare)" in text
        assert "Start run" not in text and "Generate" not in text
