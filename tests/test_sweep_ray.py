"""`ctrust sweep --engine ray` on a local Ray (2 CPUs, started once for the module) with tiny random
Llama models: the same greedy outputs, verdicts and scores as the local engine; each calibrated spec
compressed once; a worker killed with SIGKILL mid-cell restarted with nothing generated twice; the
driver killed mid-sweep and restarted with no finished work redone; bad input as one line per cell."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sweep_helpers import FakeFactory, SlowFactory, stub_model
from tiny_models import save_tiny_llama

from ctrust_tui.events import Progress
from ctrust_tui.store import open_store
from ctrust_tui.sweep import LocalEngine, build_grid, run_sweep

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
GREEDY = "advglue,ethics"  # greedy decoding: outputs do not depend on how requests are batched
WORKER_PATH = os.pathsep.join([str(REPO), str(TESTS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)


@pytest.fixture(scope="module")
def cluster() -> str:
    """One local Ray for the module (starting one costs seconds to tens of seconds on a loaded machine)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": WORKER_PATH}})
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("models")
    save_tiny_llama(d / "tiny")
    return d


def _engine(**kw):
    from ctrust_tui.sweep.ray_engine import RayEngine

    engine = RayEngine(retries=2, **kw)
    engine.start()
    return engine


def _table(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sorted(conn.execute(sql).fetchall())
    finally:
        conn.close()


def _results(db: Path) -> dict[str, list[tuple]]:
    """Everything a sweep decides, without run ids and timestamps."""
    runs = "SELECT r.model_name, r.compression, r.seed"
    return {
        "generations": _table(db, "SELECT key, output, n_tokens, finish FROM generations"),
        "verdicts": _table(db, f"{runs}, v.prompt_key, v.rules, v.verdict, v.refusal, v.correct FROM verdicts v "
                               "JOIN runs r ON r.id = v.run_id"),
        "scores": _table(db, f"{runs}, s.dimension, s.rules, s.score, s.ci_low, s.ci_high, s.n, s.final FROM scores s "
                             "JOIN runs r ON r.id = s.run_id"),
        "runs": _table(db, "SELECT model_name, compression, seed, status, total_generations, done_generations "
                           "FROM runs"),
    }


@pytest.mark.slow  # ~100 s on a loaded 2-core machine: two workers import torch one after the other
def test_ray_and_local_give_identical_results_and_compress_once(cluster: str, models: Path, tmp_path: Path) -> None:
    grid = build_grid({"models": "tiny", "compression": "rtn-4b-g32", "seeds": "0,1", "dimensions": GREEDY,
                       "limit": 4, "device": "cpu"})
    loaded: list[dict] = []

    def emit(cell, ev) -> None:
        if type(ev).__name__ == "ModelLoaded":
            loaded.append(dict(ev.info))

    engine = _engine()
    on_ray = run_sweep(grid, engine, db_path=tmp_path / "ray.db", models_dir=models, emit=emit)
    assert [o.status for o in on_ray] == ["finished", "finished"], [o.error for o in on_ray]
    # compressed once, by one worker, into the shared models dir; the other cell reused it
    assert sorted(i["reused"] for i in loaded) == [False, True] and all(i["engine"] == "ray" for i in loaded)
    assert sorted(p.name for p in models.iterdir() if not p.name.startswith(".")) == ["tiny", "tiny--rtn-4b-g32"]
    local = run_sweep(grid, LocalEngine(), db_path=tmp_path / "local.db", models_dir=models, emit=lambda c, e: None)
    assert [o.status for o in local] == ["finished", "finished"]
    a, b = _results(tmp_path / "ray.db"), _results(tmp_path / "local.db")
    assert len(a["generations"]) == 2 * 8 and len(a["verdicts"]) == 2 * 8 * 2 and a["scores"]
    assert a == b


def test_worker_killed_mid_cell_is_restarted_and_nothing_is_generated_twice(cluster: str, models: Path,
                                                                           tmp_path: Path) -> None:
    grid = build_grid({"models": "tiny", "compression": "none", "dimensions": GREEDY, "limit": 4, "device": "cpu",
                       "max_batch": 2})
    ref = run_sweep(grid, LocalEngine(), db_path=tmp_path / "ref.db", models_dir=models, emit=lambda c, e: None)
    assert ref[0].status == "finished"

    engine = _engine(worker_factory=SlowFactory(delay=1.0))
    backends = []
    factory = engine.factory
    engine.factory = lambda *a: backends.append(factory(*a)) or backends[-1]
    killed: list[int] = []

    def emit(cell, ev) -> None:  # on the driver, right after the first batch was committed
        if isinstance(ev, Progress) and ev.generated > 0 and not killed:
            killed.append(backends[0].worker_pid)
            os.kill(backends[0].worker_pid, signal.SIGKILL)

    (out,) = run_sweep(grid, engine, db_path=tmp_path / "ray.db", models_dir=models, emit=emit)
    assert out.status == "finished", out.error
    assert killed and backends[0].deaths == 1 and backends[0].worker_pid != killed[0]
    assert backends[0].info["restarts"] == 1
    assert out.generated == 8  # every generation yielded (and committed) exactly once
    got, want = _results(tmp_path / "ray.db"), _results(tmp_path / "ref.db")
    assert len(got["generations"]) == 8 and got == want


DRIVER = """
import json, sys
from pathlib import Path
import ray
from sweep_helpers import SlowFactory
from ctrust_tui.sweep import build_grid, run_sweep
from ctrust_tui.sweep.ray_engine import RayEngine
address, db, models = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": sys.argv[4]}})
grid = build_grid({"models": "tiny", "compression": "none", "seeds": "0,1,2", "dimensions": "advglue,ethics",
                   "limit": 4, "device": "cpu", "max_batch": 4})
engine = RayEngine(worker_factory=SlowFactory(delay=0.5))
engine.start()
for o in run_sweep(grid, engine, db_path=db, models_dir=models, emit=lambda c, e: None):
    print(json.dumps({"seed": o.cell.seed, "status": o.status, "generated": o.generated, "error": o.error}))
"""


def _driver(cluster: str, db: Path, models: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": WORKER_PATH}
    return subprocess.Popen([sys.executable, "-c", DRIVER, cluster, str(db), str(models), WORKER_PATH],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=TESTS)


@pytest.mark.slow  # ~90 s on a loaded 2-core machine: two drivers, four workers
def test_driver_killed_mid_sweep_then_rerun_redoes_no_finished_work(cluster: str, models: Path,
                                                                     tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    proc = _driver(cluster, db, models)
    deadline = time.time() + 300
    finished: list[tuple] = []
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                finished = _table(db, "SELECT seed FROM runs WHERE status = 'finished'")
            except sqlite3.Error:
                finished = []
            if finished:
                break
        time.sleep(0.1)
    assert proc.poll() is None and finished, proc.communicate()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = len(_table(db, "SELECT key FROM generations"))
    assert committed < 24  # mid-sweep: some cell still had work left

    again = _driver(cluster, db, models)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    cells = {d["seed"]: d for d in map(json.loads, out.splitlines())}
    done_before = {seed for (seed,) in finished}
    assert {s for s, d in cells.items() if d["status"] == "skipped"} >= done_before
    assert all(d["status"] in ("skipped", "finished") for d in cells.values()), cells
    assert sum(d["generated"] for d in cells.values()) == 24 - committed  # only what was missing
    with open_store(db, readonly=True) as s:
        runs = s.runs()
        assert len(runs) == 3 and all(r.status == "finished" for r in runs)
        assert s.counts()["generations"] == 24


def test_bad_input_on_ray_names_the_cell_and_keeps_finished_cells(cluster: str, tmp_path: Path) -> None:
    models, db = tmp_path / "models", tmp_path / "cache.db"
    for name in ("ok", "huge"):
        stub_model(models, name)
    grid = build_grid({"models": "ok,huge", "compression": "none", "dimensions": "ethics", "limit": 3})
    out = run_sweep(grid, _engine(worker_factory=FakeFactory(oom=("huge",))), db_path=db, models_dir=models,
                    emit=lambda c, e: None)
    assert [o.status for o in out] == ["finished", "failed"]
    assert "ran out of memory" in out[1].error and "MemoryError" in out[1].error and out[1].exception is None
    with open_store(db, readonly=True) as s:
        assert [(r.model_name, r.status) for r in s.runs()] == [("ok", "finished")]

    # workers that do not see the shared models dir: one line per cell, nothing generated
    grid = build_grid({"models": "ok", "compression": "none", "dimensions": "ethics", "limit": 3, "seeds": "7"})
    engine = _engine(worker_factory=FakeFactory(), worker_models_dir=tmp_path / "not-mounted")
    (out,) = run_sweep(grid, engine, db_path=db, models_dir=models, emit=lambda c, e: None)
    assert out.status == "failed" and out.exception is None
    assert "cannot read the models dir" in out.error and str(tmp_path / "not-mounted") in out.error
