"""Compare screen: `f` on a flipped prompt shows the flip forensics (computed in a worker, untrusted text inert)."""

from __future__ import annotations

import shutil

import pytest
from forensics_fixtures import build_forensics_db
from tui_helpers import rendered, wait_for

from ctrust_tui.tui.app import CtrustApp


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory):
    return build_forensics_db(tmp_path_factory.mktemp("tui-forensics"))


async def _open_flips(pilot, app):
    await pilot.press("2")
    screen = app.screen
    table = screen.query_one("#compare-table")
    await wait_for(pilot, lambda: table.row_count > 0)
    table.focus()
    await pilot.press("enter")
    flips = screen.query_one("#flips")
    await wait_for(pilot, lambda: flips.row_count == 3)
    return screen, flips


async def test_f_on_a_flip_computes_and_shows_forensics(tiny_db, tmp_path):
    db, models, _ = tiny_db
    shutil.copy(db, tmp_path / "cache.db")
    app = CtrustApp(tmp_path / "cache.db", models)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, flips = await _open_flips(pilot, app)
        assert not screen.query_one("#flip-detail").display
        detail = screen.query_one("#forensics")
        seen = []
        for row in range(3):
            flips.move_cursor(row=row)
            await pilot.press("f")
            await wait_for(pilot, lambda: "#1 → #2" in rendered(detail) and "computing" not in rendered(detail))
            seen.append(rendered(detail))
        assert screen.query_one("#flip-detail").display
        text = "\n".join(seen)
        assert "identical" in text  # the prompt whose outputs are the same text
        assert "token 2: 'sat'" in text and "'ran'" in text and "#1 base" in text and "#2 variant" in text
        assert "near-tie" in text or "change of belief" in text
        await pilot.press("escape")
        assert not screen.query_one("#flip-detail").display


async def test_read_only_browse_shows_only_cached_forensics(tiny_db):
    db, models, _ = tiny_db
    app = CtrustApp(db, models, readonly=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, flips = await _open_flips(pilot, app)
        await pilot.press("f")
        detail = screen.query_one("#forensics")
        await wait_for(pilot, lambda: "not computed yet" in rendered(detail))
        assert "ctrust compare 1 2 --forensics" in rendered(detail)
