"""`ctrust sweep` without Ray: the grid (flags, TOML, YAML, bad input), the local engine, finished
cells skipped, a failing cell named while the others finish (exit 2), and the Ray engine's
errors that need no cluster (Ray missing, an unreachable address)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sweep_helpers import FakeFactory, stub_model

from ctrust_tui.cli import main
from ctrust_tui.errors import CtrustError
from ctrust_tui.store import open_store
from ctrust_tui.sweep import CellStatus, LocalEngine, build_grid, read_grid_file, run_sweep
from ctrust_tui.trust.rules import RULE_SETS


def _sweep(*args: str):
    return CliRunner().invoke(main, ["sweep", *args])


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


# -- the grid ----------------------------------------------------------------------------------
def test_grid_from_flags_toml_and_yaml_is_the_same(tmp_path: Path) -> None:
    flags = build_grid({"models": "a,b", "compression": "none,gptq-4b-g128,wanda-2:4", "dimensions": "ethics,mmlu",
                        "profile": "quick", "seeds": "0,1", "limit": 3, "calib_seed": 0})
    toml = tmp_path / "grid.toml"
    toml.write_text('models = ["a", "b"]\ncompression = ["none", "gptq-4b-g128", "wanda-2:4"]\n'
                    'dimensions = "ethics,mmlu"\nprofile = "quick"\nseeds = [0, 1]\nlimit = 3\ncalib-seed = 0\n')
    yaml = tmp_path / "grid.yaml"
    yaml.write_text("models: [a, b]\ncompression: [none, gptq-4b-g128, wanda-2:4]\ndimensions: ethics,mmlu\n"
                    "profile: quick\nseeds: [0, 1]\nlimit: 3\n")
    assert build_grid(read_grid_file(toml)) == flags == build_grid(read_grid_file(yaml))
    cells = flags.cells()
    assert len(cells) == 12 and [c.label for c in cells[:3]] == ["a / none / seed 0", "a / none / seed 1",
                                                                 "a / gptq-4b-g128 / seed 0"]
    cfg = flags.run_config(cells[2], db_path=tmp_path / "c.db", models_dir=tmp_path)
    assert cfg.compressions == (cells[2].spec,) and cfg.seed == 0 and cfg.limit == 3
    assert cfg.calibration.seed == 0 and cfg.dimensions == ("mmlu", "ethics")


@pytest.mark.parametrize("values, message", [
    ({"models": "a", "colour": "red"}, "grid: unknown key(s) colour"),
    ({"compression": "none,gptq-9b"}, "gptq: unsupported bits 9"),
    ({"dimensions": "ethics,honesty"}, "unknown dimension 'honesty'"),
    ({"seeds": "0,x"}, "grid: seeds must be an integer"),
    ({"seeds": [0, -1]}, "out of range"),
    ({"profile": "huge"}, "unknown profile 'huge'"),
    ({"limit": 0}, "limit must be >= 1"),
    ({"models": {"a": 1}}, "grid: models must be a list"),
])
def test_bad_grid_values_are_one_clear_error(values: dict, message: str) -> None:
    with pytest.raises(CtrustError) as err:
        build_grid(values)
    assert message in str(err.value)


def test_bad_grid_on_the_command_line_is_one_line_and_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    bad_file = tmp_path / "grid.toml"
    bad_file.write_text("models = [\n")
    cases = [
        (["--compression", "none,zip-4b"], "unknown compression 'zip-4b'"),
        (["--dimensions", "nope"], "unknown dimension 'nope'"),
        (["--models", "ghost"], "grid: model 'ghost' (every cell ghost / *)"),
        (["--grid", str(bad_file)], f"grid file {bad_file}"),
        (["--grid", str(tmp_path / "missing.toml")], "cannot read"),
        (["--address", "auto"], "--address configure the Ray engine: add --engine ray"),
    ]
    for args, message in cases:
        res = _sweep("--db", str(db), "--models-dir", str(tmp_path / "models"), *args)
        assert res.exit_code == 2, (args, res.output)
        errors = _error_lines(res.output)
        assert len(errors) == 1 and message in errors[0], (args, res.output)
        assert "Traceback" not in res.output
    assert not db.exists()  # nothing ran, nothing written


def test_flags_override_the_grid_file(tmp_path: Path, monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr("ctrust_tui.cli._run_sweep", lambda grid, engine, db, models, **kw: seen.update(grid=grid))
    monkeypatch.setattr("ctrust_tui.sweep.check_models", lambda grid, models: None)
    f = tmp_path / "grid.toml"
    f.write_text('models = ["m"]\ncompression = "none,rtn-4b-g32"\nseeds = [0, 1, 2]\ndimensions = "ethics"\n')
    res = _sweep("--grid", str(f), "--seeds", "5", "--db", str(tmp_path / "c.db"))
    assert res.exit_code == 0, res.output
    grid = seen["grid"]
    assert grid.seeds == (5,) and [str(s) for s in grid.compressions] == ["none", "rtn-4b-g32"]
    assert grid.models == ("m",) and grid.dimensions == ("ethics",) and grid.profile == "smoke"


# -- the local engine --------------------------------------------------------------------------
def test_local_sweep_runs_every_cell_then_skips_them_all(tmp_path: Path) -> None:
    models, db = tmp_path / "models", tmp_path / "cache.db"
    stub_model(models, "m1")
    stub_model(models, "m2")
    grid = build_grid({"models": "m1,m2", "compression": "none,bnb-int8", "seeds": "0,1",
                       "dimensions": "ethics,advglue", "limit": 4})
    events: list[tuple[str, object]] = []
    out = run_sweep(grid, LocalEngine(FakeFactory()), db_path=db, models_dir=models,
                    emit=lambda c, e: events.append((c.label, e)))
    assert [o.status for o in out] == ["finished"] * 8 and all(o.generated == 8 for o in out)
    with open_store(db, readonly=True) as s:
        runs = s.runs()
        assert len(runs) == 8 and all(r.status == "finished" for r in runs)
        assert {(r.model_name, r.compression, r.seed) for r in runs} == {
            (m, c, seed) for m in ("m1", "m2") for c in ("none", "bnb-int8") for seed in (0, 1)}
        assert s.counts()["generations"] == 8 * 8
        assert all(set(s.verdict_rules(r.id)) == set(RULE_SETS) for r in runs)

    def refuse(*a, **k):  # a finished cell must not even load its model again
        raise AssertionError("a finished cell was run again")

    events.clear()
    again = run_sweep(grid, LocalEngine(refuse), db_path=db, models_dir=models,
                      emit=lambda c, e: events.append((c.label, e)))
    assert [o.status for o in again] == ["skipped"] * 8
    assert [o.run_id for o in again] == [o.run_id for o in out]
    skipped = [e for _, e in events if isinstance(e, CellStatus) and e.status == "skipped"]
    assert len(skipped) == 8 and all("already finished" in e.detail for e in skipped)


def test_a_cell_resumes_from_the_cache_when_its_run_was_interrupted(tmp_path: Path) -> None:
    models, db = tmp_path / "models", tmp_path / "cache.db"
    stub_model(models, "m1")
    grid = build_grid({"models": "m1", "compression": "none", "dimensions": "ethics", "limit": 6})
    (first,) = run_sweep(grid, LocalEngine(FakeFactory()), db_path=db, models_dir=models, emit=lambda c, e: None)
    with open_store(db) as s:  # as if the driver had been killed before the run finished
        s.set_run_status(first.run_id, "running")
        s.conn.execute("DELETE FROM generations WHERE rowid IN (SELECT rowid FROM generations LIMIT 2)")
        s.conn.commit()
    (second,) = run_sweep(grid, LocalEngine(FakeFactory()), db_path=db, models_dir=models, emit=lambda c, e: None)
    assert second.status == "finished" and second.run_id == first.run_id and second.generated == 2


def test_a_failing_cell_is_named_and_the_others_finish(tmp_path: Path) -> None:
    models, db = tmp_path / "models", tmp_path / "cache.db"
    stub_model(models, "ok")
    stub_model(models, "huge")
    grid = build_grid({"models": "ok,huge", "compression": "none", "dimensions": "ethics", "limit": 3})
    out = run_sweep(grid, LocalEngine(FakeFactory(oom=("huge",))), db_path=db, models_dir=models,
                    emit=lambda c, e: None)
    assert [o.status for o in out] == ["finished", "failed"]
    assert out[1].exception is not None and "MemoryError" in out[1].error  # a local MemoryError is not bad input
    with open_store(db, readonly=True) as s:
        assert [r.status for r in s.runs() if r.model_name == "ok"] == ["finished"]


def test_cli_sweep_skips_what_run_made_and_names_a_broken_cell(tmp_path: Path) -> None:
    """Real tiny models: the cell `ctrust run` already made (a compressed variant) is recognised as done
    without loading anything, the new seed runs, each broken cell is one line naming it; exit 2."""
    from tiny_models import save_tiny_llama

    models, db = tmp_path / "models", tmp_path / "cache.db"
    save_tiny_llama(models / "tiny")
    save_tiny_llama(models / "broken")
    (models / "broken" / "tokenizer.json").write_text('{"version": "1.0", "model": 42}')
    common = ["--dimensions", "advglue", "--limit", "2", "--device", "cpu", "--db", str(db), "--models-dir", str(models)]
    res = _sweep("--models", "broken", *common)  # every cell failed: the new cache is not left behind
    assert res.exit_code == 2 and "0 finished, 0 done before, 1 failed" in res.output, res.output
    assert not db.exists()
    res = CliRunner().invoke(main, ["run", "--model", "tiny", "--compression", "rtn-4b-g32", *common])
    assert res.exit_code == 0, res.output
    res = _sweep("--models", "tiny", "--compression", "rtn-4b-g32", "--seeds", "0,1", *common)
    assert res.exit_code == 0 and "1 finished, 1 done before, 0 failed" in res.output, res.output
    res = _sweep("--models", "tiny,broken", "--compression", "none", *common)
    assert res.exit_code == 2, res.output
    assert "1 finished, 0 done before, 1 failed" in res.output and "Traceback" not in res.output
    (error,) = _error_lines(res.output)
    assert error.startswith("error: cell broken / none / seed 0: cannot load model"), error
    with open_store(db, readonly=True) as s:  # the broken model never loaded: no run of it
        assert sorted((r.model_name, r.compression, r.seed, r.status) for r in s.runs()) == [
            ("tiny", "none", 0, "finished"), ("tiny", "rtn-4b-g32", 0, "finished"),
            ("tiny", "rtn-4b-g32", 1, "finished")]


# -- Ray errors that need no cluster -------------------------------------------------------------
def test_engine_ray_without_ray_says_how_to_install_it(tmp_path: Path, monkeypatch) -> None:
    stub_model(tmp_path / "models", "m")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.setattr("ctrust_tui.sweep.check_models", lambda grid, models: None)
    res = _sweep("--engine", "ray", "--models", "m", "--db", str(tmp_path / "c.db"), "--models-dir",
                 str(tmp_path / "models"))
    assert res.exit_code == 2
    (error,) = _error_lines(res.output)
    assert "pip install 'ctrust-tui[ray]'" in error


def test_engine_ray_with_every_cell_done_starts_no_ray(tmp_path: Path, monkeypatch) -> None:
    models, db = tmp_path / "models", tmp_path / "cache.db"
    stub_model(models, "m")
    grid = build_grid({"models": "m", "compression": "none", "seeds": "0,1", "dimensions": "ethics", "limit": 3})
    run_sweep(grid, LocalEngine(FakeFactory()), db_path=db, models_dir=models, emit=lambda c, e: None)
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray is not even importable
    monkeypatch.setattr("ctrust_tui.sweep.check_models", lambda grid, models: None)
    res = _sweep("--engine", "ray", "--models", "m", "--seeds", "0,1", "--dimensions", "ethics", "--limit", "3",
                 "--db", str(db), "--models-dir", str(models))
    assert res.exit_code == 0, res.output
    assert "Ray is not started" in res.output and "0 finished, 2 done before" in res.output


def test_unreachable_ray_address_is_one_line(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("ray")
    monkeypatch.setattr("ctrust_tui.sweep.check_models", lambda grid, models: None)
    for address in ("ray://127.0.0.1:1", "127.0.0.1:1"):
        res = _sweep("--engine", "ray", "--address", address, "--db", str(tmp_path / "c.db"))
        assert res.exit_code == 2, res.output
        (error,) = _error_lines(res.output)
        assert f"cannot reach Ray at {address}" in error and "ray start --head" in error
    res = _sweep("--engine", "ray", "--address", "nowhere", "--db", str(tmp_path / "c.db"))
    assert res.exit_code == 2 and "use auto, HOST:PORT or ray://HOST:PORT" in res.output


# -- the browser sees results as they land ------------------------------------------------------
async def test_browse_shows_a_sweeps_runs_as_they_land(tmp_path: Path) -> None:
    import asyncio

    from ctrust_tui.tui.app import CtrustApp

    models, db = tmp_path / "models", tmp_path / "cache.db"
    stub_model(models, "m1")
    one = build_grid({"models": "m1", "compression": "none", "dimensions": "ethics", "limit": 3})
    run_sweep(one, LocalEngine(FakeFactory()), db_path=db, models_dir=models, emit=lambda c, e: None)
    app = CtrustApp(db, models, readonly=True)
    async with app.run_test(size=(100, 30)) as pilot:
        runs = app.screen.query_one("#runs")
        await pilot.pause(0.5)
        assert runs.row_count == 1
        more = build_grid({"models": "m1", "compression": "none,bnb-int8", "seeds": "0,1", "dimensions": "ethics",
                           "limit": 3})
        out = await asyncio.to_thread(run_sweep, more, LocalEngine(FakeFactory()), db_path=db, models_dir=models,
                                      emit=lambda c, e: None)
        assert [o.status for o in out] == ["skipped", "finished", "finished", "finished"]
        end = asyncio.get_running_loop().time() + 10  # the browser re-reads the cache every 3 s by itself
        while runs.row_count < 4 and asyncio.get_running_loop().time() < end:
            await pilot.pause(0.1)
        assert runs.row_count == 4
