"""Compare flip list + side-by-side, browse drill-down + search, inspect streaming two variants."""

from __future__ import annotations

from tui_fixtures import fake_factory
from tui_helpers import rendered, wait_for

from ctrust_tui.store import open_store
from ctrust_tui.tui.app import CtrustApp


async def test_compare_flip_list_and_side_by_side(fixture_db, models_dir):
    app = CtrustApp(fixture_db, models_dir, readonly=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        screen = app.screen
        table = screen.query_one("#compare-table")
        await wait_for(pilot, lambda: table.row_count > 0)
        headers = [str(c.label) for c in table.columns.values()]
        assert headers[1].startswith("#1 none (base)") and "gptq-4b-g128" in headers[2] and "wanda-2:4" in headers[3]
        chart = rendered(screen.query_one("#chart"))
        assert "AdvGLUE" in chart and "█" in chart
        # pick the dimension with the most flips
        flips = {str(k.value): int(str(table.get_cell(k, "flips"))) for k in table.rows}
        dim = max(flips, key=flips.get)
        assert flips[dim] > 0
        table.focus()
        table.move_cursor(row=list(flips).index(dim))
        await pilot.press("enter")
        ft = screen.query_one("#flips")
        await wait_for(pilot, lambda: ft.row_count > 0)
        assert ft.row_count <= flips[dim]
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SideBySide")
        panes = list(app.screen.query("VerticalScroll"))
        assert len(panes) == 3  # one pane per run
        await pilot.press("escape")
        await pilot.press("escape")
        assert screen.query_one("#compare-views").current == "chart-scroll"
        # baseline switch: b on the highlighted run
        picker = screen.query_one("#run-picker")
        picker.focus()
        picker.highlighted = 1
        await pilot.press("b")
        await wait_for(pilot, lambda: "(base)" in str(list(table.columns.values())[1].label)
                       and "#2" in str(list(table.columns.values())[1].label))


async def test_browse_drill_down_and_search(fixture_db, models_dir):
    app = CtrustApp(fixture_db, models_dir, readonly=True)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        runs = screen.query_one("#runs")
        await wait_for(pilot, lambda: runs.row_count == 3)
        assert "read-only" in rendered(screen.query_one("NavBar"))
        runs.focus()
        await pilot.press("enter")
        dims = screen.query_one("#dims")
        await wait_for(pilot, lambda: dims.row_count == 4)
        await pilot.press("enter")
        items = screen.query_one("#items")
        await wait_for(pilot, lambda: items.row_count > 0)
        await pilot.press("enter")
        assert screen.level == "item"
        body = rendered(screen.query_one("#item-body"))
        assert "output 1/1" in body and "[user]" in body
        await pilot.press("y")  # copy works (OSC 52 in a real terminal)
        await pilot.press("escape", "escape", "escape")
        assert screen.level == "runs"
        await pilot.press("slash")
        await pilot.press(*"sorry")
        await pilot.press("enter")
        results = screen.query_one("#search-results")
        await wait_for(pilot, lambda: results.row_count > 0)
        assert "outputs match" in rendered(screen.query_one("#browse-status"))
        await pilot.press("enter")
        assert type(app.screen).__name__ == "TextModal"
        await pilot.press("escape")
        # read-only: live screens are not available
        await pilot.press("escape")
        await pilot.press("3")
        assert app.screen is screen


async def test_browse_sees_rows_written_by_another_writer(copy_db, models_dir):
    app = CtrustApp(copy_db, models_dir, readonly=True)
    async with app.run_test(size=(100, 30)) as pilot:
        runs = app.screen.query_one("#runs")
        await wait_for(pilot, lambda: runs.row_count == 3)
        from tui_fixtures import build_db

        build_db(copy_db.parent, specs="rtn-4b-g128", dims=("ethics",))  # another writer, same file
        await pilot.press("r")
        await wait_for(pilot, lambda: runs.row_count == 4)


async def test_foreign_database_is_a_modal_not_a_traceback(tmp_path, models_dir):
    import sqlite3

    db = tmp_path / "other.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    app = CtrustApp(db, models_dir, readonly=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ErrorModal" and bool(app.screen.query("#dialog-body")))
        assert "not a ctrust cache" in rendered(app.screen.query_one("#dialog-body"))


async def test_inspect_two_variants_stream_and_cache(tmp_path, models_dir):
    db = tmp_path / "cache.db"
    app = CtrustApp(db, models_dir, backend_factory=fake_factory(delay=0.02))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("5")
        screen = app.screen
        screen.query_one("#prompt").focus()
        await pilot.press(*"Say something")
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(list(screen.query("Pane"))) == 2)
        await wait_for(pilot, lambda: not screen.generating, timeout=15)
        panes = list(screen.query("Pane"))
        assert [p.spec for p in panes] == ["none", "rtn-4b-g128"]
        for p in panes:
            assert p.outputs and rendered(p.query_one(".pane-output")).strip()
            assert "verdict" in rendered(p.query_one(".pane-verdict"))
            assert "done" in rendered(p.query_one(".pane-status"))
        with open_store(db, readonly=True) as store:
            assert store.counts()["generations"] == 2
        await pilot.press("ctrl+g")  # again: served from the cache
        await wait_for(pilot, lambda: not screen.generating and all(
            "cached" in rendered(p.query_one(".pane-status")) for p in screen.query("Pane")), timeout=10)


async def test_inspect_picked_privacy_prompt_uses_dimension_judge(tmp_path, models_dir):
    db = tmp_path / "cache.db"
    app = CtrustApp(db, models_dir, backend_factory=fake_factory(script=lambda r: "Sure: john@enron.com"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("5")
        screen = app.screen
        await pilot.press("ctrl+o")
        picker = app.screen
        picker.query_one("#picker-dim").value = "privacy"
        await pilot.pause()
        ol = picker.query_one("#picker-list")
        await wait_for(pilot, lambda: ol.option_count > 0)
        ol.focus()
        ol.highlighted = 0
        await pilot.press("enter")
        assert screen.record is not None and screen.record.dimension == "privacy"
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: not screen.generating and all(p.outputs for p in screen.query("Pane")),
                       timeout=15)
        verdict = rendered(list(screen.query("Pane"))[0].query_one(".pane-verdict"))
        assert verdict.startswith("verdict")


async def test_rules_toggle_rereads_scores_under_the_other_rule_set(fixture_db, models_dir):
    """`R` switches Browse and Compare between the paper and robust rule sets (both are stored)."""
    with open_store(fixture_db, readonly=True) as s:
        rid = s.runs()[-1].id
        paper = {x.dimension: x.score for x in s.scores([rid], rules="paper")}
        robust = {x.dimension: x.score for x in s.scores([rid], rules="robust")}
    differ = [d for d in paper if paper[d] is not None and robust.get(d) is not None and
              f"{paper[d]:.1f}" != f"{robust[d]:.1f}"]
    assert differ, "the fixture's fake outputs should read differently under the two rule sets"
    d = differ[0]
    app = CtrustApp(fixture_db, models_dir, readonly=True)
    async with app.run_test(size=(160, 30)) as pilot:
        runs = app.screen.query_one("#runs")
        await wait_for(pilot, lambda: runs.row_count == 3)

        def cell() -> str:
            return " ".join(str(c) for c in runs.get_row_at(runs.row_count - 1))

        assert app.rules == "paper" and app.sub_title == "paper rules"
        await wait_for(pilot, lambda: f"{paper[d]:.1f}" in cell())
        await pilot.press("R")
        await wait_for(pilot, lambda: app.sub_title == "robust rules" and f"{robust[d]:.1f}" in cell())
        await pilot.press("2")
        status = app.screen.query_one("#compare-status")
        await wait_for(pilot, lambda: "robust rules (R switches)" in rendered(status))
        await pilot.press("R")
        await wait_for(pilot, lambda: "paper rules (R switches)" in rendered(status))
