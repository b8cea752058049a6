"""A real run killed with SIGKILL mid-way: the cache stays consistent, nothing committed is lost,
and re-running the same settings generates only what is missing and ends with the same scores."""

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
from fakes import FakeBackend, fake_factory

from ctrust_tui.compress.spec import parse_specs
from ctrust_tui.runner import RunConfig, Runner
from ctrust_tui.store import open_store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

TESTS = Path(__file__).resolve().parent
DIMS = ("ethics", "fairness", "advglue", "mmlu")

CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from fakes import FakeBackend, fake_factory
from ctrust_tui.compress.spec import parse_specs
from ctrust_tui.runner import RunConfig, Runner
cfg = RunConfig(model="stub-model", compressions=parse_specs("none"), dimensions=tuple(sys.argv[4].split(",")),
                profile="smoke", db_path=Path(sys.argv[2]), models_dir=Path(sys.argv[3]))
backend = FakeBackend(batch_size=3, delay=0.03)
Runner(cfg, lambda e: None, backend_factory=fake_factory(backend)).execute()
print("finished", flush=True)
"""


def _cfg(models: Path, db: Path) -> RunConfig:
    return RunConfig(model="stub-model", compressions=parse_specs("none"), dimensions=DIMS, profile="smoke",
                     db_path=db, models_dir=models)


def _committed(db: Path) -> set[str]:
    if not db.exists():
        return set()
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return {k for (k,) in conn.execute("SELECT key FROM generations")}
        finally:
            conn.close()
    except sqlite3.Error:  # not created yet / mid-creation
        return set()


def _scores(db: Path) -> dict[str, tuple]:
    with open_store(db, readonly=True) as s:
        (run,) = s.runs()
        assert run.status == "finished"
        return {r.dimension: (r.score, r.ci_low, r.ci_high, r.refusal_rate, r.n, r.total, r.final)
                for r in s.scores([run.id])}


def test_sigkill_mid_run_then_resume(stub_models: Path, tmp_path: Path) -> None:
    # reference: the same settings uninterrupted, in-process
    ref_db = tmp_path / "ref.db"
    ref_backend = FakeBackend(batch_size=3)
    Runner(_cfg(stub_models, ref_db), lambda e: None, backend_factory=fake_factory(ref_backend)).execute()
    total = sum(len(c) for c in ref_backend.calls)
    assert total >= 40
    ref_scores = _scores(ref_db)

    db = tmp_path / "cache.db"
    env = {**os.environ, "PYTHONHASHSEED": "random"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(TESTS), str(db), str(stub_models), ",".join(DIMS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    seen: set[str] = set()
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            seen = _committed(db)
            if len(seen) >= 9:  # a few batches committed, most still to come
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"child ended before the kill: {proc.communicate()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert 9 <= len(seen) < total

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT value FROM meta WHERE key='app'").fetchone()[0] == "ctrust"
        after_kill = {k for (k,) in conn.execute("SELECT key FROM generations")}
        fts_rows = conn.execute("SELECT COUNT(*) FROM generations_fts").fetchone()[0]
        status = conn.execute("SELECT status FROM runs").fetchone()[0]
    finally:
        conn.close()
    assert seen <= after_kill  # every generation committed before the kill survived
    assert len(after_kill) < total and fts_rows == len(after_kill)
    assert status == "running"  # killed, never marked finished
    with open_store(db, readonly=True) as s:
        (run,) = s.runs()
        assert run.env["pid"] == proc.pid
        assert run.shown_status == "interrupted"  # what `ctrust runs` and the browser show

    backend = FakeBackend(batch_size=3)
    events: list = []
    Runner(_cfg(stub_models, db), events.append, backend_factory=fake_factory(backend)).execute()
    regenerated = [k for call in backend.calls for k in call]
    assert len(regenerated) == total - len(after_kill)  # only the missing ones
    assert not set(regenerated) & after_kill
    started = [e for e in events if type(e).__name__ == "RunStarted"]
    assert started and started[0].resumed and started[0].cached_generations == len(after_kill)
    assert _scores(db) == ref_scores

    with open_store(db, readonly=True) as s:
        assert s.counts()["generations"] == total and s.integrity_ok()
        (run,) = s.runs()
        assert run.done_generations == run.total_generations == total
    again = FakeBackend(batch_size=3)  # a third run of the same settings generates nothing
    Runner(_cfg(stub_models, db), lambda e: None, backend_factory=fake_factory(again)).execute()
    assert again.calls == []
    assert json.dumps(_scores(db)) == json.dumps(ref_scores)
