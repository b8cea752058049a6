"""Run every cell of a grid with one engine, into one cache, nothing done twice.

Each cell is a `Runner` run on the driver: the driver alone writes the cache (each generated batch
is committed by `runner.generate_cached`, judged under both rule sets and scored there), so there
is one store and no SQLite over the network. The engine only decides where the model runs: the
`local` engine loads it in this process (one cell after another), the `ray` engine in a Ray actor
per cell (`sweep.ray_engine`, cells concurrently, a driver thread and Store connection per cell).

Nothing is done twice:
- a cell whose run already finished under the same settings (same weights fingerprint, prompts,
  seed, scorer, current rules) is skipped before any model loads or worker starts: a driver
  killed mid-sweep and restarted with the same command goes straight to the unfinished cells;
- an unfinished cell resumes from the cache (the Runner serves committed generations);
- a calibrated spec is compressed once per (model, spec, calibration) and reused by fingerprint.

A failing cell (bad model folder, a worker out of memory, a worker that keeps dying) is reported
with its label and the sweep goes on; its finished neighbours stay in the cache.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol

from ..errors import CtrustError
from ..events import Event, RunCancelled, RunFailed, RunFinished
from ..runner import BackendFactory, Runner, compression_label, real_backend
from .grid import Cell, Grid


@dataclass(frozen=True)
class CellStatus:
    """A sweep-level change of one cell (the Runner's own events say the rest)."""

    status: str  # queued | skipped | finished | failed | cancelled
    detail: str = ""
    run_id: int | None = None


SweepEvent = Event | CellStatus
CellEmit = Callable[[Cell, SweepEvent], None]


@dataclass(frozen=True)
class CellOutcome:
    cell: Cell
    status: str  # finished | skipped (finished before) | failed | cancelled
    run_id: int | None = None
    error: str | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)  # a bug, not bad input
    generated: int = 0  # generations made by this sweep (0 for a skipped cell)


class Engine(Protocol):
    name: str
    concurrency: int  # cells run at once

    def factory(self, model, spec, cfg, progress, cancel): ...  # a runner.BackendFactory

    def close(self) -> None: ...


class LocalEngine:
    """The existing runner in this process: one cell after another."""

    name = "local"
    concurrency = 1

    def __init__(self, backend_factory: BackendFactory = real_backend) -> None:
        self.factory = backend_factory

    def close(self) -> None:
        pass


def finished_run(grid: Grid, cell: Cell, db_path: Path, models_dir: Path) -> int | None:
    """The id of a finished run of `cell` with exactly the settings a new run would record, judged
    under the current version of every rule set; None when the cell has work left (or cannot be
    told without loading the model: then the Runner resumes it from the cache, which is safe)."""
    if not db_path.is_file():
        return None
    try:
        from ..compress.cache import cache_fingerprint, find_reusable, variant_dir_name
        from ..compress.fingerprint import model_fingerprint
        from ..modelstore import resolve_model
        from ..store import open_store
        from ..trust import get_dimension
        from ..trust.prompt_format import MODEL
        from ..trust.rules import RULE_SETS, RULES_VERSION

        if grid.prompt_format != MODEL:  # the run records the template the model resolved to
            return None
        model = resolve_model(cell.model, models_dir)
        fingerprint = model_fingerprint(model.path)
        spec = cell.spec
        if spec.kind in ("quant", "prune"):  # as compress_model reuses a variant
            folder = models_dir / variant_dir_name(model.name, spec, grid.calibration)
            meta = find_reusable(folder, spec, fingerprint, grid.calibration)
            if meta is None:
                return None
            fingerprint = cache_fingerprint(folder, meta)
        dims = [get_dimension(d) for d in grid.dimensions]
        scorer = None
        if any(d.needs_toxicity_scorer for d in dims):
            if (grid.toxicity_scorer or "profanity") != "profanity":
                return None  # other scorers may load a model just to be named
            from ..scorers import resolve_toxicity_scorer

            scorer = resolve_toxicity_scorer(None).name
        settings = {  # what Runner._execute_one records; any difference means "not this run"
            "model_fingerprint": fingerprint,
            "compression": compression_label(spec, grid.calibration),
            "dimensions": [d.id for d in dims],
            "profile": grid.profile,
            "seed": cell.seed,
            "scorer": scorer,
            "limit": grid.limit,
            "prompts": _prompts_hash(grid.dimensions, grid.profile, grid.limit),
        }
        with open_store(db_path, readonly=True) as store:
            for run in store.runs(1_000_000):
                if run.status != "finished" or run.model_name != model.name or dict(run.settings) != settings:
                    continue
                have = store.verdict_rules(run.id)
                if all(have.get(r, {}).get("versions") == [RULES_VERSION[r]] for r in RULE_SETS):
                    return run.id
    except Exception:  # any doubt: run the cell (the Runner resumes from the cache)
        return None
    return None


@lru_cache(maxsize=16)
def _prompts_hash(dimensions: tuple[str, ...], profile: str, limit: int | None) -> str:
    """As the Runner hashes a run's prompts; the same for every cell of a grid (paper profile: seconds)."""
    from ..trust import get_dimension, get_profile
    from ..trust.types import sha256_hex

    prof = get_profile(profile)
    keys = []
    for d in dimensions:
        keys.extend(r.key for r in get_dimension(d).prompts(prof, limit))
    return sha256_hex("".join(keys))[:16]


def check_models(grid: Grid, models_dir: Path) -> None:
    """Every model of the grid resolves and is a safe folder, before any cell starts."""
    from ..modelstore import check_model_folder, resolve_model

    for name in grid.models:
        try:
            check_model_folder(resolve_model(name, models_dir))
        except CtrustError as exc:
            raise CtrustError(f"grid: model {name!r} (every cell {name} / *): {exc}") from None


def run_sweep(grid: Grid, engine: Engine, *, db_path: Path, models_dir: Path, emit: CellEmit,
              cancel: threading.Event | None = None) -> list[CellOutcome]:
    """Run every cell; returns one outcome per cell, in grid order. Never raises for a failing cell."""
    from ..store import open_store

    cancel = cancel or threading.Event()
    cells = grid.cells()
    # create (or migrate) the cache here, once: cell threads opening a new file at the same moment
    # race on its schema and WAL switch ("database is locked")
    open_store(db_path).close()
    for cell in cells:
        emit(cell, CellStatus("queued"))

    def one(cell: Cell) -> CellOutcome:
        if cancel.is_set():
            emit(cell, CellStatus("cancelled"))
            return CellOutcome(cell, "cancelled")
        done = finished_run(grid, cell, db_path, models_dir)
        if done is not None:
            emit(cell, CellStatus("skipped", f"run #{done} already finished", done))
            return CellOutcome(cell, "skipped", done)
        return _run_cell(grid, cell, engine, db_path=db_path, models_dir=models_dir, emit=emit, cancel=cancel)

    if engine.concurrency <= 1 or len(cells) <= 1:
        return [one(c) for c in cells]
    with ThreadPoolExecutor(max_workers=min(engine.concurrency, len(cells)), thread_name_prefix="ctrust-cell") as pool:
        futures = [pool.submit(one, c) for c in cells]
        try:
            return [f.result() for f in futures]
        except BaseException:  # Ctrl-C in the main thread: the cell threads stop at their next poll
            cancel.set()
            raise


def _run_cell(grid: Grid, cell: Cell, engine: Engine, *, db_path: Path, models_dir: Path, emit: CellEmit,
              cancel: threading.Event) -> CellOutcome:
    cfg = grid.run_config(cell, db_path=db_path, models_dir=models_dir)
    seen: dict[str, int] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, RunFinished):
            seen["generated"] = event.generated
            seen["run"] = event.run_id
        elif isinstance(event, (RunFailed, RunCancelled)) and event.run_id is not None:
            seen["run"] = event.run_id
        emit(cell, event)

    runner = Runner(cfg, on_event, cancel=cancel, backend_factory=engine.factory)
    try:
        run_ids = runner.execute()
    except CtrustError as exc:
        emit(cell, CellStatus("failed", str(exc), seen.get("run")))
        return CellOutcome(cell, "failed", seen.get("run"), str(exc))
    except Exception as exc:  # a bug: the sweep goes on, the CLI reports it with its traceback
        message = f"{type(exc).__name__}: {exc}"
        emit(cell, CellStatus("failed", message, seen.get("run")))
        return CellOutcome(cell, "failed", seen.get("run"), message, exception=exc)
    if not run_ids:  # the Runner returns no id for a cancelled run
        emit(cell, CellStatus("cancelled", "", seen.get("run")))
        return CellOutcome(cell, "cancelled", seen.get("run"))
    emit(cell, CellStatus("finished", "", run_ids[0]))
    return CellOutcome(cell, "finished", run_ids[0], generated=seen.get("generated", 0))
