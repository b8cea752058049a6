"""Snapshot tests of every screen at 80x24 (the smallest supported terminal) and 120x40 (fixed
fixture data, frozen clocks, no blinking cursor).

Regenerate after an intended UI change: `pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest
from tui_fixtures import fake_factory
from tui_helpers import settle, wait_for

from ctrust_tui.events import (
    DimensionScoreUpdated,
    GenerationFinished,
    Progress,
    PromptsStarted,
    RunStarted,
    TokensGenerated,
)
from ctrust_tui.trust.types import DimensionResult
from ctrust_tui.tui.app import CtrustApp

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


@pytest.fixture(autouse=True)
def _deterministic(no_blink):
    yield


@SIZES
def test_browse_runs(size, snap_compare, fixture_db, models_dir):
    async def ready(pilot):
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#runs").row_count == 3)

    assert snap_compare(CtrustApp(fixture_db, models_dir, readonly=True), terminal_size=size, run_before=ready)


@SIZES
def test_browse_run_dimensions(size, snap_compare, fixture_db, models_dir):
    async def ready(pilot):
        runs = pilot.app.screen.query_one("#runs")
        await wait_for(pilot, lambda: runs.row_count == 3)
        runs.focus()
        runs.move_cursor(row=2)
        await pilot.press("enter")
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#dims").row_count == 4)

    assert snap_compare(CtrustApp(fixture_db, models_dir, readonly=True), terminal_size=size, run_before=ready)


@SIZES
def test_compare(size, snap_compare, fixture_db, models_dir):
    async def ready(pilot):
        await pilot.press("2")
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#compare-table").row_count == 4)
        await settle(pilot)
        await pilot.pause(0.3)

    assert snap_compare(CtrustApp(fixture_db, models_dir, readonly=True), terminal_size=size, run_before=ready)


@SIZES
def test_compare_trust_vs_compression(size, snap_compare, fixture_db, models_dir):
    async def ready(pilot):
        await pilot.press("2")
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#compare-table").row_count == 4)
        await settle(pilot)  # the table is rebuilt once more on screen resume
        await pilot.press("g")
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#compare-views").current == "plot-scroll")
        await settle(pilot)
        await pilot.pause(0.3)

    assert snap_compare(CtrustApp(fixture_db, models_dir, readonly=True), terminal_size=size, run_before=ready)


@SIZES
def test_setup(size, snap_compare, copy_db, models_dir):
    async def ready(pilot):
        await pilot.press("3")
        await pilot.pause()
        pilot.app.screen.query_one("#dims").focus()

    assert snap_compare(CtrustApp(copy_db, models_dir, backend_factory=fake_factory()), terminal_size=size,
                        run_before=ready)


@SIZES
def test_run_live(size, snap_compare, copy_db, models_dir):
    async def ready(pilot):
        await pilot.press("4")
        run = pilot.app.screen
        run.request = {"model": "fake-model", "profile": "smoke", "seed": 0, "device": "cpu", "limit": 3,
                       "compressions": ()}
        run.queue_status = {"none": "done", "gptq-4b-g128": "queued"}
        run.queue_avg = {"none": 61.5}
        run.running = True
        run.clock = lambda: 1000.0  # the 1 s timer then shows the same elapsed/ETA on every machine
        dims = ("advglue", "stereotype", "toxicity")
        run.apply_events([
            RunStarted(2, "fake-model", "gptq-4b-g128", dims, "smoke", 30, 6, False),
            PromptsStarted(2, (("advglue/sst2/0", 0, "advglue", "Is this review positive? 'a gorgeous film'"),
                               ("stereotype/benign/0", 0, "stereotype", "I am going to express my view..."),
                               ("toxicity/toxic/0", 0, "toxicity", "Continue: The neighbours were"),
                               ("toxicity/toxic/0", 1, "toxicity", "Continue: The neighbours were")),
                           (1, 1, 3, 3)),
            TokensGenerated(2, (("advglue/sst2/0", 0, "positive"), ("stereotype/benign/0", 0, "I"),
                                ("toxicity/toxic/0", 0, " kind"), ("toxicity/toxic/0", 1, " loud")), 4),
            TokensGenerated(2, (("stereotype/benign/0", 0, " disagree."), ("toxicity/toxic/0", 0, " people"),
                                ("toxicity/toxic/0", 1, " at night")), 9),
            GenerationFinished(2, "advglue/sst2/0", "advglue", "sst2", "p", ("positive",),
                               {"verdict": "correct", "correct": True, "refusal": False}, False),
            Progress(2, 12, 30, 6, 6, 48, 21.5, 3.0, 4.5),
            DimensionScoreUpdated(2, "gptq-4b-g128", DimensionResult("advglue", 66.7, (40.0, 90.0), 0.1, 6), 6,
                                  True),
            DimensionScoreUpdated(2, "gptq-4b-g128", DimensionResult("stereotype", 50.0, None, 0.0, 2), 6, False),
        ])
        pilot.app.screen.query_one("#compress-bar").update(total=30, progress=30)
        await pilot.pause()

    assert snap_compare(CtrustApp(copy_db, models_dir, backend_factory=fake_factory()), terminal_size=size,
                        run_before=ready)


@SIZES
def test_inspect(size, snap_compare, copy_db, models_dir):
    async def ready(pilot):
        await pilot.press("5")
        screen = pilot.app.screen
        screen.query_one("#prompt").value = "Tell me about your neighbours."
        for _ in range(2):  # the second pass is served from the cache: no tok/s clock in view
            await screen.action_generate()
            await wait_for(pilot, lambda: not screen.generating, timeout=60)
        screen.query_one("#variants").focus()
        await pilot.pause()

    assert snap_compare(CtrustApp(copy_db, models_dir, backend_factory=fake_factory()), terminal_size=size,
                        run_before=ready)


@SIZES
def test_help(size, snap_compare, copy_db, models_dir):
    assert snap_compare(CtrustApp(copy_db, models_dir, backend_factory=fake_factory()), terminal_size=size,
                        press=["question_mark"])
