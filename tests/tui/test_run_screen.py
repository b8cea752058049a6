"""Setup → start → live streaming → scores → finished; cancel with confirmation; inline validation."""

from __future__ import annotations

import re
import time

from tui_fixtures import fake_factory
from tui_helpers import rendered, wait_for

from ctrust_tui.events import PromptsStarted, RunStarted, TokensGenerated
from ctrust_tui.store import open_store
from ctrust_tui.tui.app import CtrustApp


def _select_dims(screen, dims):
    sl = screen.query_one("#dims")
    sl.deselect_all()
    for d in dims:
        sl.select(d)


async def test_setup_start_streams_scores_and_finishes(tmp_path, models_dir):
    app = CtrustApp(tmp_path / "cache.db", models_dir, backend_factory=fake_factory(delay=0.1, batch_size=3))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        setup = app.screen
        assert type(setup).__name__ == "SetupScreen"
        _select_dims(setup, ["advglue", "stereotype"])
        setup.query_one("#limit").value = "3"
        setup.query_one("#specs").value = "wanda-2:4"
        await pilot.press("ctrl+p")  # palette opens (then close it) — the palette is part of the flow
        await pilot.press("escape")
        setup.query_one("#specs").focus()
        await pilot.press("enter")
        assert [str(s) for s in setup.queue] == ["wanda-2:4"]
        assert "Start runs: none → wanda-2:4" in rendered(setup.query_one("#will-run"))
        await pilot.press("ctrl+r")
        run = app.get_screen("run")
        await wait_for(pilot, lambda: app.screen is run)
        seen_stream = []

        def streaming() -> bool:
            text = rendered(run.query_one("#current"))
            if "◂ " in text and any(w in text for w in ("agree", "wrong", "yes", "no", "sorry", "positive", "A")):
                seen_stream.append(text)
            return bool(seen_stream)

        await wait_for(pilot, streaming, timeout=10)
        await wait_for(pilot, lambda: not run.running, timeout=20)
        assert run.state == "finished", rendered(run.query_one("#run-title"))
        scores = rendered(run.query_one("#scores"))
        assert "AdvGLUE" in scores and "Stereotype" in scores and "✓" in scores
        assert run.queue_status == {"none": "done", "wanda-2:4": "done"}
        # events were batched: far fewer UI updates than runner events
        with open_store(app.db_path, readonly=True) as store:
            runs = store.runs()
            assert [r.status for r in runs] == ["finished", "finished"]
            assert {s.dimension for s in store.scores([runs[0].id]) if s.final} == {"advglue", "stereotype"}


async def test_events_are_batched_and_keys_stay_responsive(tmp_path, models_dir):
    app = CtrustApp(tmp_path / "cache.db", models_dir,
                    backend_factory=fake_factory(delay=0.04, batch_size=4, chunk_words=1))
    counts = {"tokens": 0}
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        _select_dims(app.screen, ["ethics", "stereotype", "advglue"])
        run = app.get_screen("run")
        orig = run.apply_events

        def counting(events):
            counts["tokens"] += sum(1 for e in events if isinstance(e, TokensGenerated))
            orig(events)

        run.apply_events = counting
        gaps: list[float] = []
        last = [time.perf_counter()]

        def tick() -> None:  # event-loop lag = how late a key would be handled
            now = time.perf_counter()
            gaps.append(now - last[0] - 0.01)
            last[0] = now

        started = time.perf_counter()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.screen is run)
        await pilot.pause(0.3)  # past the screen switch and the worker's imports
        timer = app.set_interval(0.01, tick)
        last[0] = time.perf_counter()
        latencies = []
        while run.running:
            t0 = time.perf_counter()
            await pilot.press("down")
            latencies.append(time.perf_counter() - t0)
            await pilot.pause(0.1)
        timer.stop()
        elapsed = time.perf_counter() - started
        assert run.state == "finished"
        assert counts["tokens"] > run.batches, "token events must be coalesced into batches"
        assert run.batches <= elapsed * 16 + 3, (run.batches, elapsed)
        gaps.sort()
        median, p95 = gaps[len(gaps) // 2], gaps[int(0.95 * (len(gaps) - 1))]
        assert median < 0.05, gaps
        assert p95 < 0.15, gaps
        print(f"\nbatches={run.batches} token_events={counts['tokens']} elapsed={elapsed:.2f}s "
              f"loop lag median={1000 * median:.1f}ms p95={1000 * p95:.1f}ms max={1000 * gaps[-1]:.1f}ms "
              f"pilot key round trips={[round(1000 * x) for x in latencies]}ms")


async def test_cancel_asks_for_confirmation(tmp_path, models_dir):
    app = CtrustApp(tmp_path / "cache.db", models_dir, backend_factory=fake_factory(delay=1.0, batch_size=2))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        _select_dims(app.screen, ["ethics"])
        await pilot.press("ctrl+r")
        run = app.get_screen("run")
        await wait_for(pilot, lambda: app.screen is run and run.running and run.run_id is not None)
        await pilot.press("x")
        assert type(app.screen).__name__ == "ConfirmModal"
        await pilot.press("n")
        assert app.screen is run and run.running and not run.cancel_event.is_set()
        await pilot.press("x")
        await pilot.press("y")
        await wait_for(pilot, lambda: not run.running, timeout=10)
        assert run.state == "cancelled"
        assert "cancelled" in rendered(run.query_one("#run-title"))
        with open_store(app.db_path, readonly=True) as store:
            assert store.runs()[0].status == "cancelled"


async def test_inline_validation_and_queue(tmp_path, models_dir):
    app = CtrustApp(tmp_path / "cache.db", models_dir, backend_factory=fake_factory())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        s = app.screen
        s.query_one("#method").value = "gptq"
        s.query_one("#group").value = "100"
        await pilot.pause()
        assert "power of two" in rendered(s.query_one("#spec-preview"))
        s.query_one("#group").value = "128"
        await pilot.pause()
        assert "gptq-4b-g128" in rendered(s.query_one("#spec-preview"))
        s.query_one("#method").value = "wanda"
        await pilot.pause()
        assert s.query_one("#row-pattern").display and not s.query_one("#row-bits").display
        assert s.query_one("#row-calib").display and s.query_one("#row-precision").display
        assert s.calibration().precision == "auto"
        s.query_one("#precision").value = "fp32"
        await pilot.pause()
        assert s.calibration().precision == "fp32" and s.calibration().tag.endswith("-fp32")
        s.query_one("#pattern").value = "unstructured"
        s.query_one("#sparsity").value = "1.5"
        await pilot.pause()
        assert "sparsity must be in (0, 1)" in rendered(s.query_one("#spec-preview"))
        s.query_one("#method").value = "magnitude"
        await pilot.pause()
        assert not s.query_one("#row-calib").display and not s.query_one("#row-precision").display
        s.query_one("#specs").value = "gptq-5b"
        s.query_one("#specs").focus()
        await pilot.press("enter")
        assert "unsupported bits" in rendered(s.query_one("#spec-preview"))
        s.query_one("#specs").value = "gptq-4b-g128, wanda-2:4"
        await pilot.press("enter")
        assert [str(x) for x in s.queue] == ["gptq-4b-g128", "wanda-2:4"]
        labels = [str(o.prompt) for o in s.query_one("#dims")._options]
        assert any("advglue — Adversarial robustness (AdvGLUE dev, substitute for AdvGLUE++)" in lbl for lbl in labels)
        s.query_one("#dims").deselect_all()
        await pilot.press("ctrl+r")
        assert "select at least one dimension" in rendered(s.query_one("#setup-errors"))
        assert app.screen is s
        s.query_one("#dims").select("ethics")
        for field, value, message in (("#limit", "0", "limit must be an integer >= 1"),
                                      ("#seed", "x", "seed must be an integer >= 0")):
            s.query_one(field).value = value
            await pilot.pause()
            assert s.query_one(field).has_class("-invalid")  # the Input's own validator marks it as typed
            await pilot.press("ctrl+r")
            assert message in rendered(s.query_one("#setup-errors")) and app.screen is s
            s.query_one(field).value = "1"


async def test_bad_model_shows_modal_not_traceback(tmp_path, models_dir):
    app = CtrustApp(tmp_path / "cache.db", models_dir, backend_factory=fake_factory())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        _select_dims(app.screen, ["ethics"])
        app.screen.query_one("#model-path").value = "/nonexistent/model"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ErrorModal" and bool(app.screen.query("#dialog-body")))
        body = rendered(app.screen.query_one("#dialog-body"))
        assert "not found" in body and "Traceback" not in body
        await pilot.press("enter")
        assert type(app.screen).__name__ == "RunScreen"


async def test_long_sampled_batch_never_freezes_the_run_screen(tmp_path, models_dir):
    """One slow batch of 3 sampled rows (quick toxicity, n=3): no generation finishes for ~9 s, yet
    elapsed advances every second, tokens/s counts the streamed tokens, and the panel shows the
    three rows generating with their sample index."""
    slow = fake_factory(delay=0.3, batch_size=4, script=lambda r: " ".join(["word"] * 30))
    app = CtrustApp(tmp_path / "cache.db", models_dir, backend_factory=slow)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        setup = app.screen
        _select_dims(setup, ["toxicity"])
        setup.query_one("#profile").value = "quick"
        setup.query_one("#limit").value = "1"
        await pilot.press("ctrl+r")
        run = app.get_screen("run")
        await wait_for(pilot, lambda: app.screen is run and run.streamed > 0, timeout=15)
        first = rendered(run.query_one("#gen-label"))
        elapsed0 = run.elapsed
        await pilot.pause(2.3)
        second = rendered(run.query_one("#gen-label"))
        assert run.progress is not None and run.progress.done == 0, "no generation finished in the window"
        assert run.elapsed >= elapsed0 + 1.5, (elapsed0, run.elapsed)
        assert first != second and re.search(r"0:0\d elapsed", second), (first, second)
        rate = float(re.search(r"([\d.]+) tok/s", second).group(1))
        assert rate > 0, second
        assert "ETA estimating…" in second
        current = rendered(run.query_one("#current"))
        for s in (1, 2, 3):
            assert f"sample {s}/3" in current, current
        assert "word word" in current
        run.cancel_event.set()
        await wait_for(pilot, lambda: not run.running, timeout=15)
        assert run.state == "cancelled"


async def test_start_with_an_empty_queue_runs_the_form_and_the_baseline(tmp_path, models_dir):
    """The form says GPTQ 4-bit and nothing is queued: Start runs none then gptq-4b-g128; unticking
    the baseline runs the form's spec alone. The line under the queue, the request and the Run
    screen's queue agree each time."""
    app = CtrustApp(tmp_path / "cache.db", models_dir, backend_factory=fake_factory())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        setup = app.screen
        _select_dims(setup, ["ethics"])
        setup.query_one("#limit").value = "1"
        setup.query_one("#method").value = "gptq"
        setup.query_one("#bits").value = 4
        await pilot.pause()
        assert setup.queue == []
        assert "Start runs: none → gptq-4b-g128" in rendered(setup.query_one("#will-run"))
        assert [str(s) for s in setup.build_request()["compressions"]] == ["none", "gptq-4b-g128"]
        setup.query_one("#baseline").value = False
        await pilot.pause()
        assert "Start runs: gptq-4b-g128  (the form's spec" in rendered(setup.query_one("#will-run"))
        setup.query_one("#baseline").value = True
        await pilot.pause()
        await pilot.press("ctrl+r")
        run = app.get_screen("run")
        await wait_for(pilot, lambda: app.screen is run and not run.running and run.state != "starting",
                       timeout=20)
        assert list(run.queue_status) == ["none", "gptq-4b-g128"]
        assert run.queue_status == {"none": "done", "gptq-4b-g128": "done"}
        with open_store(app.db_path, readonly=True) as store:
            assert [r.compression for r in sorted(store.runs(), key=lambda r: r.id)] == ["none", "gptq-4b-g128"]


async def test_rows_still_generating_keep_their_text_when_the_set_grows(tmp_path, models_dir):
    """The continuous scheduler reports the set of running rows each time a request joins: a row
    already streaming keeps its text, a finished row leaves, a new one starts empty."""
    app = CtrustApp(tmp_path / "cache.db", models_dir, backend_factory=fake_factory())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        run = app.screen
        run.apply_events([
            RunStarted(1, "m", "none", ("ethics",), "smoke", 3, 0, False),
            PromptsStarted(1, (("e/0", 0, "ethics", "p0"), ("e/1", 0, "ethics", "p1"))),
            TokensGenerated(1, (("e/0", 0, "hello"), ("e/1", 0, "bye"))),
            PromptsStarted(1, (("e/1", 0, "ethics", "p1"), ("e/2", 0, "ethics", "p2"))),
        ])
        await pilot.pause()
        assert set(run.current) == {("e/1", 0), ("e/2", 0)}
        assert run.current[("e/1", 0)]["out"] == ["bye"] and run.current[("e/2", 0)]["out"] == []
