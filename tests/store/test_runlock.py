"""Item 8 of the hardening issue: one writer per run. A second `ctrust run` with the same settings on
the same cache waits for the first (saying which process holds the run) and then resumes from the
cache, instead of generating the same prompts again."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fakes import FakeBackend, fake_factory

import ctrust_tui.runner as runner_mod
from ctrust_tui.compress.spec import parse_specs
from ctrust_tui.errors import Cancelled
from ctrust_tui.events import Notice, RunFinished, RunStarted
from ctrust_tui.runner import RunConfig, Runner
from ctrust_tui.store import open_store
from ctrust_tui.store.runlock import RunLock, lock_path
from ctrust_tui.trust import get_dimension
from ctrust_tui.trust.dimension import Dimension, JudgeContext
from ctrust_tui.trust.rules import ROBUST

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"model_fingerprint": "fp", "compression": "none", "seed": 0}

HOLDER = """
import sys, time
from pathlib import Path
from ctrust_tui.store.runlock import RunLock
lock = RunLock(Path(sys.argv[1]))
lock.acquire({"model_fingerprint": "fp", "compression": "none", "seed": 0})
print("held", flush=True)
sys.stdin.read()  # hold until the test closes our stdin (or kills us)
lock.release()
"""


def _holder(db: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.stdout.readline().strip() == "held"
    return p


def test_second_process_is_told_who_holds_the_run_and_can_stop_waiting(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    proc = _holder(db)
    try:
        info = json.loads(lock_path(db, SETTINGS).read_text())
        assert info["pid"] == proc.pid
        notices: list[str] = []
        stop_after = time.monotonic() + 0.6
        with pytest.raises(Cancelled):
            RunLock(db).acquire(SETTINGS, notice=notices.append, should_stop=lambda: time.monotonic() > stop_after,
                                poll=0.05)
        assert len(notices) == 1 and f"in process {proc.pid} on " in notices[0] and "waiting" in notices[0]
        other = RunLock(db)  # other settings: a different run, never blocked
        other.acquire({**SETTINGS, "seed": 1}, should_stop=lambda: True)
        assert other.held
        other.release()
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    with RunLock(db) as lock:  # the holder released: free at once
        lock.acquire(SETTINGS, should_stop=lambda: True)
        assert lock.held
    assert not lock_path(db, SETTINGS).exists()  # released locks leave no file behind


def test_a_killed_holder_never_blocks_the_next_run(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    proc = _holder(db)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert lock_path(db, SETTINGS).exists()  # stale file: harmless, the kernel dropped the lock
    with RunLock(db) as lock:
        lock.acquire(SETTINGS, should_stop=lambda: True)
        assert lock.held and json.loads(lock_path(db, SETTINGS).read_text())["pid"] == os.getpid()


def test_waiter_gets_the_lock_when_the_holder_releases(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    first = RunLock(db)
    first.acquire(SETTINGS)
    got = threading.Event()
    second = RunLock(db)  # same process, own file description: flock excludes it too (TUI threads)

    def wait() -> None:
        second.acquire(SETTINGS, poll=0.02)
        got.set()

    t = threading.Thread(target=wait)
    t.start()
    assert not got.wait(0.3)
    first.release()
    assert got.wait(10)
    t.join()
    assert json.loads(lock_path(db, SETTINGS).read_text())["pid"] == os.getpid() and second.held
    second.release()


def test_two_runs_with_the_same_settings_generate_each_prompt_once(stub_models: Path, db_path: Path, monkeypatch) -> None:
    if any(type(get_dimension(d)).judge_paper is Dimension.judge_paper for d in ("ethics", "stereotype")):
        monkeypatch.setattr(runner_mod, "JudgeContext", functools.partial(JudgeContext, rules=ROBUST))
    cfg = RunConfig(model="stub-model", compressions=parse_specs("none"), dimensions=("ethics", "stereotype"),
                    profile="smoke", db_path=db_path, models_dir=stub_models, limit=4)
    first_b, second_b = FakeBackend(batch_size=2, delay=0.03), FakeBackend(batch_size=2)
    first_ev: list = []
    second_ev: list = []
    started = threading.Event()

    def first_emit(ev) -> None:
        first_ev.append(ev)
        if isinstance(ev, RunStarted):
            started.set()

    t1 = threading.Thread(target=Runner(cfg, first_emit, backend_factory=fake_factory(first_b)).execute)
    t1.start()
    assert started.wait(30)
    ids2 = Runner(cfg, second_ev.append, backend_factory=fake_factory(second_b)).execute()
    t1.join(30)
    generated_first = sum(len(c) for c in first_b.calls)
    assert generated_first == 8 and second_b.calls == []  # the second generated nothing
    notices = [e.message for e in second_ev if isinstance(e, Notice)]
    assert any(f"in process {os.getpid()}" in m and "waiting" in m for m in notices), notices
    fin = [e for e in second_ev if isinstance(e, RunFinished)]
    assert fin and fin[0].generated == 0 and fin[0].cached == 8
    with open_store(db_path, readonly=True) as store:
        assert [r.id for r in store.runs()] == ids2 and store.counts()["generations"] == 8
