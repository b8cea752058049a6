"""Benchmark `ctrust sweep`: the local engine against Ray on this machine, and the driver's write path.

    .venv/bin/python benchmarks/bench_sweep.py                      # default model, 4 specs, 3 dimensions, smoke
    .venv/bin/python benchmarks/bench_sweep.py --limit 4 --json bench-sweep.json
    .venv/bin/python benchmarks/bench_sweep.py --driver-only                # the driver's write path only

One grid (the default model x 4 specs x 1 seed x 3 greedy dimensions, smoke profile, `--limit`
prompts per dimension) runs twice into two fresh caches: with `--engine local` (cells one after
another in this process) and with `--engine ray` (a local Ray started here, one actor per cell,
`--ray-cpus` CPUs, each worker one CPU). The variants are compressed first, once, into
`--models-dir` and reused by both engines (their compression is not part of either wall time).

Reported:
- wall time of each engine, Ray's start-up apart, and whether both caches hold identical outputs;
- Ray's overhead: start-up, one actor's creation (no model), a no-op actor call's round trip (one
  per generated batch), and per cell: creation plus the worker's own imports and model load;
- driver write throughput: generations/s committed to cache.db (batches of 8, one transaction
  each, as `generate_cached` commits them), and the driver's whole per-generation path (plan,
  commit, judge under both rule sets, score) with an instant fake backend over one cell of the
  grid's dimensions at paper scale (`--driver-only` measures just these): the rate one driver can
  absorb from any number of workers;
- per-generation cost of the model here (seconds and new tokens), and the paper profile's
  generation count per cell, for the estimate in docs/scale-out.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the fake backend for the driver-only measurement

DEFAULT_SPECS = "none,rtn-4b-g128,magnitude-2:4,wanda-2:4"
DEFAULT_DIMS = "advglue,ethics,ood"  # greedy: the two engines must produce the same outputs


def _grid(args: argparse.Namespace, limit: int | None):
    from ctrust_tui.sweep import build_grid

    return build_grid({"models": args.model, "compression": args.specs, "dimensions": args.dims,
                       "profile": "smoke", "limit": limit, "device": "cpu", "nsamples": args.nsamples,
                       "seqlen": args.seqlen})


def _timed_sweep(grid, engine, db: Path, models: Path) -> dict:
    from ctrust_tui.events import ModelLoaded, RunFinished
    from ctrust_tui.sweep import run_sweep

    loads, runs = [], []

    def emit(cell, ev) -> None:
        if isinstance(ev, ModelLoaded):
            loads.append(float(ev.info.get("load_seconds") or 0.0))
        elif isinstance(ev, RunFinished):
            runs.append((ev.generated, ev.seconds))
            print(f"  {cell.label}: {ev.generated} generated in {ev.seconds:.1f} s", flush=True)

    t = time.perf_counter()
    out = run_sweep(grid, engine, db_path=db, models_dir=models, emit=emit)
    wall = time.perf_counter() - t
    bad = [f"{o.cell.label}: {o.error}" for o in out if o.status != "finished"]
    if bad:
        raise SystemExit("a cell did not finish: " + "; ".join(bad))
    return {"wall_s": wall, "cells": len(out), "generated": sum(g for g, _ in runs),
            "run_seconds": sum(s for _, s in runs), "load_seconds": loads}


def _outputs(db: Path) -> dict[str, str]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT key, output FROM generations"))
    finally:
        conn.close()


def _tokens(db: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COALESCE(SUM(n_tokens), 0) FROM generations").fetchone()[0])
    finally:
        conn.close()


def _ray_overheads(ray, calls: int = 200) -> dict:
    @ray.remote(num_cpus=1)
    class Noop:
        def ping(self) -> int:
            return 0

    t = time.perf_counter()
    actor = Noop.remote()
    ray.get(actor.ping.remote())
    create = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(calls):
        ray.get(actor.ping.remote())
    rtt = (time.perf_counter() - t) / calls
    ray.kill(actor)
    return {"actor_create_s": create, "call_rtt_ms": rtt * 1000}


def _write_throughput(work: Path, rows: int = 20_000, batch: int = 8) -> float:
    """Generations/s into a fresh cache, committed in batches of `batch` (one transaction each)."""
    from ctrust_tui.store import open_store

    db = work / "write.db"
    with open_store(db) as store:
        t = time.perf_counter()
        for i in range(0, rows, batch):
            store.put_generations([{
                "key": f"k{j:08d}", "model_fingerprint": "f" * 64, "compression": "none", "prompt_key": f"p{j}",
                "rendered_hash": "h" * 64, "decoding": {"max_new_tokens": 20, "temperature": 0.0, "n": 1},
                "sample_index": 0, "seed": 0, "output": "The answer is not wrong. " * 4, "n_tokens": 20,
                "finish": "eos", "seconds": 0.1} for j in range(i, min(rows, i + batch))])
        return rows / (time.perf_counter() - t)


def _driver_path(args: argparse.Namespace, models: Path, work: Path) -> dict:
    """The driver's whole per-generation path with an instant backend: one cell of the grid's dimensions
    at `--driver-profile` scale (paper: 14,282 generations), so per-cell costs (prompt building, the
    final bootstrap intervals) are amortised as in a real sweep."""
    from fakes import fake_factory

    from ctrust_tui.sweep import LocalEngine, build_grid

    grid = build_grid({"models": args.model, "compression": "none", "dimensions": args.dims,
                       "profile": args.driver_profile})
    r = _timed_sweep(grid, LocalEngine(fake_factory(batch_size=16)), work / "driver.db", models)
    return {"generations": r["generated"], "seconds": r["wall_s"], "per_s": r["generated"] / r["wall_s"],
            "profile": args.driver_profile}


def _paper_generations() -> int:
    from ctrust_tui.trust import DIMENSION_IDS, get_dimension, get_profile

    prof = get_profile("paper")
    return sum(r.decoding.n for d in DIMENSION_IDS for r in get_dimension(d).build_prompts(prof))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", type=Path, default=REPO / "models",
                    help="model store holding --model; compressed variants are written here")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--specs", default=DEFAULT_SPECS)
    ap.add_argument("--dims", default=DEFAULT_DIMS)
    ap.add_argument("--limit", type=int, default=4, help="prompts per dimension")
    ap.add_argument("--nsamples", type=int, default=8, help="calibration samples (wanda)")
    ap.add_argument("--seqlen", type=int, default=128, help="calibration tokens per sample")
    ap.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 1, help="CPUs of the local Ray")
    ap.add_argument("--driver-profile", default="paper", choices=["smoke", "quick", "paper"],
                    help="scale of the driver-only measurement (one cell, instant fake backend)")
    ap.add_argument("--driver-only", action="store_true", help="only the driver measurements (no model runs)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder for the caches (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = ap.parse_args(argv)

    from ctrust_tui.compress.api import compress_model
    from ctrust_tui.modelstore import resolve_model
    from ctrust_tui.sweep import LocalEngine
    from ctrust_tui.sweep.ray_engine import RayEngine, import_ray

    work = args.work or Path(tempfile.mkdtemp(prefix="ctrust-bench-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    models = args.models_dir
    grid = _grid(args, args.limit)
    ref = resolve_model(args.model, models)
    res: dict = {"grid": {"model": args.model, "specs": args.specs, "dims": args.dims, "limit": args.limit,
                          "cells": len(grid.cells())}, "cpus": os.cpu_count(), "load_avg": os.getloadavg()}

    if args.driver_only:
        res["write_generations_per_s"] = _write_throughput(work)
        res["driver_path"] = _driver_path(args, models, work)
        print(json.dumps({k: res[k] for k in ("write_generations_per_s", "driver_path")}, indent=2))
        if args.json:
            args.json.write_text(json.dumps(res, indent=2))
        return 0

    print("compressing (once, reused by both engines) ...", flush=True)
    t = time.perf_counter()
    for spec in grid.compressions:
        compress_model(ref.path, spec, base_name=ref.name, models_dir=models, calibration=grid.calibration,
                       device="cpu", measure_perplexity=False)  # reuse does not look at perplexity
    res["compress_s"] = time.perf_counter() - t

    print("local engine ...", flush=True)
    res["local"] = _timed_sweep(grid, LocalEngine(), work / "local.db", models)

    print("ray engine ...", flush=True)
    ray = import_ray()
    t = time.perf_counter()
    engine = RayEngine(init_kwargs={"num_cpus": args.ray_cpus})
    engine.start()
    res["ray_start_s"] = time.perf_counter() - t
    try:
        res["ray"] = _timed_sweep(grid, engine, work / "ray.db", models)
        res["ray_overheads"] = _ray_overheads(ray)
    finally:
        engine.close()
    res["identical_outputs"] = _outputs(work / "local.db") == _outputs(work / "ray.db")
    n = res["local"]["generated"]
    res["per_generation_s"] = res["local"]["run_seconds"] / n
    res["new_tokens_per_generation"] = _tokens(work / "local.db") / n
    # what a cell pays on Ray that it does not pay in-process: a fresh worker (actor creation) that
    # imports torch/transformers and loads the model for itself; each batch then costs one call
    loads_local, loads_ray = res["local"]["load_seconds"], res["ray"]["load_seconds"]
    res["per_cell_overhead_s"] = (res["ray_overheads"]["actor_create_s"] + sum(loads_ray) / len(loads_ray)
                                  - sum(loads_local) / len(loads_local))

    print("driver write path ...", flush=True)
    res["write_generations_per_s"] = _write_throughput(work)
    res["driver_path"] = _driver_path(args, models, work)
    res["paper_generations_per_cell"] = _paper_generations()
    res["load_avg_after"] = os.getloadavg()

    lo, ry, ov = res["local"], res["ray"], res["ray_overheads"]
    print(f"""
| measure | local | ray |
|---|---|---|
| wall time ({res['grid']['cells']} cells, {n} generations) | {lo['wall_s']:.1f} s | {ry['wall_s']:.1f} s (+ {res['ray_start_s']:.1f} s Ray start-up) |
| model loads (sum) | {sum(lo['load_seconds']):.1f} s | {sum(ry['load_seconds']):.1f} s (in the workers) |
| identical outputs | {res['identical_outputs']} | |

Ray overhead: actor creation {ov['actor_create_s']:.2f} s, no-op call round trip {ov['call_rtt_ms']:.2f} ms (one per
batch, overlapped with generation), per cell {res['per_cell_overhead_s']:.1f} s (actor creation + the worker's own
torch import and model load - the local load).
Driver: {res['write_generations_per_s']:.0f} generations/s committed to cache.db (batches of 8);
whole driver path (plan, commit, judge x2 rule sets, score) {res['driver_path']['per_s']:.0f} generations/s
({res['driver_path']['generations']} generations, one {res['driver_path']['profile']} cell).
Per generation here: {res['per_generation_s']:.2f} s, {res['new_tokens_per_generation']:.1f} new tokens.
Paper profile: {res['paper_generations_per_cell']} generations per cell.
Compression of the variants (once): {res['compress_s']:.1f} s. Load average {res['load_avg']} -> {res['load_avg_after']}.
""")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
