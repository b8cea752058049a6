"""The real runner, store and scoring driven by the deterministic fake backend."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from fakes import FakeBackend, fake_factory

from ctrust_tui.compress.spec import parse_specs
from ctrust_tui.events import (
    DimensionScoreUpdated,
    GenerationFinished,
    ModelLoaded,
    Notice,
    PromptsStarted,
    RunCancelled,
    RunFinished,
    RunStarted,
    TokensGenerated,
)
from ctrust_tui.runner import RunConfig, Runner
from ctrust_tui.store import open_store
from ctrust_tui.trust import get_dimension


def _cfg(models: Path, db: Path, specs: str = "none", dims=("stereotype", "ethics"), limit: int | None = 4) -> RunConfig:
    return RunConfig(model="stub-model", compressions=parse_specs(specs), dimensions=dims, profile="smoke",
                     db_path=db, models_dir=models, limit=limit)


def test_run_streams_scores_and_stores(stub_models: Path, db_path: Path) -> None:
    events = []
    backend = FakeBackend(batch_size=3)
    ids = Runner(_cfg(stub_models, db_path), events.append, backend_factory=fake_factory(backend)).execute()
    assert len(ids) == 1 and backend.closed
    kinds = [type(e) for e in events]
    assert kinds[0] is ModelLoaded and RunStarted in kinds and kinds[-1] is RunFinished
    assert any(isinstance(e, PromptsStarted) for e in events)
    streamed = [e for e in events if isinstance(e, TokensGenerated)]
    assert streamed and all(len(e.chunks) >= 1 for e in streamed)
    finished = [e for e in events if isinstance(e, GenerationFinished)]
    assert len(finished) == 8 and not any(e.cached for e in finished)
    # streamed chunks reassemble the stored outputs
    text: dict[tuple[str, int], str] = {}
    for e in streamed:
        for rid, s, t in e.chunks:
            text[(rid, s)] = text.get((rid, s), "") + t
    for e in finished:
        assert text[(e.record_id, 0)] == e.outputs[0]
    final = [e for e in events if isinstance(e, DimensionScoreUpdated) and e.final]
    assert {e.result.dimension for e in final} == {"stereotype", "ethics"}
    with open_store(db_path, readonly=True) as store:
        run = store.run(ids[0])
        assert run.status == "finished" and run.done_generations == run.total_generations == 8
        scores = {s.dimension: s for s in store.scores([ids[0]])}
        for dim in ("stereotype", "ethics"):
            judged = store.judged(ids[0], dim)
            assert len(judged) == 4
            expected = get_dimension(dim).aggregate(judged)[0]
            assert scores[dim].score == expected and scores[dim].final


def test_rerun_generates_nothing(stub_models: Path, db_path: Path) -> None:
    cfg = _cfg(stub_models, db_path)
    Runner(cfg, lambda e: None, backend_factory=fake_factory(FakeBackend())).execute()
    events = []
    second = FakeBackend()
    ids = Runner(cfg, events.append, backend_factory=fake_factory(second)).execute()
    assert second.calls == []
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.resumed and started.cached_generations == started.total_generations == 8
    assert any(isinstance(e, Notice) and "served from the cache" in e.message for e in events)
    done = next(e for e in events if isinstance(e, RunFinished))
    assert done.generated == 0 and done.cached == 8
    with open_store(db_path, readonly=True) as store:
        assert len(store.runs()) == 1 and store.runs()[0].id == ids[0]


def test_cancel_keeps_finished_batches_and_resumes(stub_models: Path, db_path: Path) -> None:
    cancel = threading.Event()
    seen = []

    def emit(e) -> None:
        seen.append(e)
        if isinstance(e, GenerationFinished) and sum(isinstance(x, GenerationFinished) for x in seen) >= 2:
            cancel.set()

    Runner(_cfg(stub_models, db_path), emit, cancel=cancel,
           backend_factory=fake_factory(FakeBackend(batch_size=2))).execute()
    assert isinstance(seen[-1], RunCancelled)
    with open_store(db_path, readonly=True) as store:
        run = store.runs()[0]
        assert run.status == "cancelled"
        kept = store.counts()["generations"]
    assert 2 <= kept < 8
    resumed = FakeBackend(batch_size=2)
    Runner(_cfg(stub_models, db_path), lambda e: None, backend_factory=fake_factory(resumed)).execute()
    assert sum(len(c) for c in resumed.calls) == 8 - kept
    with open_store(db_path, readonly=True) as store:
        assert store.runs()[0].status == "finished" and store.counts()["generations"] == 8


def test_ctrl_c_marks_the_run_cancelled_and_keeps_its_work(stub_models: Path, db_path: Path) -> None:
    import pytest

    seen = []

    def emit(e) -> None:
        seen.append(e)
        if isinstance(e, GenerationFinished) and sum(isinstance(x, GenerationFinished) for x in seen) >= 2:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread

    with pytest.raises(KeyboardInterrupt):
        Runner(_cfg(stub_models, db_path), emit, backend_factory=fake_factory(FakeBackend(batch_size=2))).execute()
    assert isinstance(seen[-1], RunCancelled)
    with open_store(db_path, readonly=True) as store:
        assert store.runs()[0].status == "cancelled"  # not left "running" forever
        assert store.counts()["generations"] >= 2


def test_sigterm_cancels_cooperatively() -> None:
    import os
    import signal
    import time

    from ctrust_tui.cli import term_cancels

    cancel = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    with term_cancels(cancel):
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 5
        while not cancel.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert cancel.is_set()
    assert signal.getsignal(signal.SIGTERM) == before  # restored


def test_several_specs_run_in_sequence(stub_models: Path, db_path: Path) -> None:
    events = []
    ids = Runner(_cfg(stub_models, db_path, "none,wanda-2:4", ("ethics",), 2), events.append,
                 backend_factory=fake_factory()).execute()
    assert len(ids) == 2
    with open_store(db_path, readonly=True) as store:
        assert sorted(r.compression for r in store.runs()) == ["none", "wanda-2:4"]


def test_generate_prompt_shares_the_runner_cache(stub_models: Path, db_path: Path) -> None:
    """Inspect's path (generate_prompt) and a run write and read the same cache entries."""
    from ctrust_tui.runner import generate_prompt
    from ctrust_tui.trust import get_profile
    from ctrust_tui.trust.types import Decoding

    rec = get_dimension("toxicity").build_prompts(get_profile("smoke"))[0]
    rec = dataclasses.replace(rec, decoding=Decoding(max_new_tokens=8, temperature=1.0, n=3))
    backend = FakeBackend(script=lambda r: f"sample {r.sample_index} says hi")
    chunks: list[tuple[int, str]] = []
    first = generate_prompt(db_path, backend, "none", rec, 0, cancel=lambda: False, on_chunks=chunks.extend)
    assert first.outputs == ["sample 0 says hi", "sample 1 says hi", "sample 2 says hi"]
    assert not first.cached and first.n_tokens == 12
    assert {s for s, _ in chunks} == {0, 1, 2}  # chunks arrive by sample index
    again = generate_prompt(db_path, FakeBackend(script=lambda r: "never asked"), "none", rec, 0,
                            cancel=lambda: False)
    assert again.cached and again.n_tokens == 0 and again.outputs == first.outputs
    with open_store(db_path, readonly=True) as store:
        assert store.counts()["generations"] == 3
