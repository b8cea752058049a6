"""Compare screen: the non-inferiority verdict column, the margin key and the recommend action."""

from __future__ import annotations

from tui_helpers import rendered, wait_for

from ctrust_tui.tui.app import CtrustApp


async def test_verdict_column_margin_key_and_recommendation(fixture_db, models_dir):
    app = CtrustApp(fixture_db, models_dir, readonly=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("2")
        screen = app.screen
        table = screen.query_one("#compare-table")
        await wait_for(pilot, lambda: table.row_count > 0, timeout=60)
        headers = [str(c.label) for c in table.columns.values()]
        assert headers[-2:] == ["#2 ±2", "#3 ±2"]
        cells = [str(table.get_cell(k, "verdict-2")) for k in table.rows]
        # smoke runs: a handful of prompts cannot show a 2-point margin
        assert cells and all(c.split()[0] in ("inconclusive", "inferior", "too") for c in cells), cells
        assert "verdict: is the variant at most 2 points worse" in rendered(screen.query_one("#compare-status"))
        await pilot.press("m")
        await wait_for(pilot, lambda: str(list(table.columns.values())[-1].label) == "#3 ±3", timeout=60)
        await pilot.press("d")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "TextModal", timeout=60)
        body = "\n".join(rendered(w) for w in app.screen.query("Static"))
        assert "nothing qualifies" in body or "recommended" in body
        assert "gptq-4b-g128" in body and "wanda-2:4" in body and "bits/weight" in body
        await pilot.press("escape")
        assert app.screen is screen
