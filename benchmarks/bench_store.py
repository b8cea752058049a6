"""The store before and after it moved to sqlite-utils, side by side in one run.

    .venv/bin/python benchmarks/bench_store.py                        # before = 848a4e7
    .venv/bin/python benchmarks/bench_store.py --out docs/performance.md

"Before" is the store of another commit, extracted with `git archive <commit> ctrust_tui` into a
temporary folder (the repository and its worktrees are not touched); "after" is this checkout.
Each measurement runs in a fresh worker process that imports one of the two (`--worker`), the
two alternating, and the best of `--repeat` is kept:

- writes, on a new cache: `put_generations` of `--generations` rows in the runner's CPU batch
  size (32, engine.generate.CPU_MAX_BATCH) and in batches of 2,000 (a GPU batch, a resume);
  `put_verdicts` of both rule sets per 32 records, as the runner does; `add_run_prompts` of
  20,000 records.
- reads, on a 1,000,000-generation cache built once by the *before* store with
  scripts/make_synthetic_cache.py (`--cache`): open read-only + `runs(200)` + `scores`, open a
  run as the browse screen does (`run_items(run, dim, limit=500)` with outputs), `search`.
- why some SQL stays (after only): `put_verdicts` and `add_run_prompts` written with insert_all
  instead of executemany; generations with sqlite-utils committing after every chunk of 999
  variables (its default; the store holds those commits back, store/lib.py); verdicts in a rowid
  table (what sqlite-utils' `create_table` makes; its `transform` fails on a WITHOUT ROWID table:
  "no such column: rowid") instead of WITHOUT ROWID.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEFORE = "848a4e7"  # the last commit whose store wrote with hand-written SQL
RUNNER_BATCH = 32  # engine.generate.CPU_MAX_BATCH
LARGE_BATCH = 2000
RULE_SETS = ("paper", "robust")


# -- worker: one side, one repetition ------------------------------------------------------
def _records(n: int):
    from ctrust_tui.trust.types import Decoding, Message, PromptRecord

    dims = ("toxicity", "stereotype", "privacy", "fairness", "ethics", "advglue", "ood", "advdemo", "mmlu")
    return [PromptRecord(f"{dims[i % 9]}-{i}", dims[i % 9], f"s{i % 4}", (Message("user", f"prompt {i} text"),),
                         Decoding(20)) for i in range(n)]


def _gen_rows(n: int) -> list[dict]:
    import random

    rng = random.Random(0)
    words = "yes no wrong not agree the answer is I cannot help with that request sorry river model".split()
    return [{"key": f"{i:040d}", "model_fingerprint": "fp", "compression": "none", "prompt_key": f"p{i % 20000}",
             "rendered_hash": "h" * 64, "decoding": {"max_new_tokens": 20, "temperature": 0}, "sample_index": 0,
             "seed": 0, "output": " ".join(rng.choice(words) for _ in range(rng.randint(1, 12))), "n_tokens": 5,
             "finish": "eos", "seconds": 0.01, "engine": ""} for i in range(n)]


def _fresh(tmp: Path, name: str):
    from ctrust_tui.store import open_store

    return open_store(tmp / f"{name}.db")


def _write_generations(tmp: Path, n: int, batch: int, *, library_commits: bool = False) -> float:
    rows = _gen_rows(n)
    s = _fresh(tmp, f"g{batch}")
    if library_commits:  # sqlite-utils as it comes: a commit after every insert chunk
        import sqlite_utils

        s.db = sqlite_utils.Database(s.conn)
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        s.put_generations(rows[i:i + batch])
    dt = time.perf_counter() - t0
    assert s.counts()["generations"] == n
    s.close()
    return n / dt


def _put_verdicts_insert_all(s, run_id: int, items, scorer: str, rules: str) -> None:
    """`Store.put_verdicts` written with insert_all (the store keeps executemany: this is why)."""
    from ctrust_tui.trust.rules import RULES_VERSION

    rows = [{"run_id": run_id, "prompt_key": rec.key, "rules": rules, "rules_version": RULES_VERSION[rules],
             "record_id": rec.id, "dimension": rec.dimension, "scenario": rec.scenario, "verdict": v.verdict,
             "refusal": int(v.refusal), "correct": None if v.correct is None else int(v.correct),
             "leak": None if v.leak is None else int(v.leak), "data": json.dumps(v.to_dict()), "scorer": scorer}
            for rec, v in items]
    s._write(lambda: s.db["verdicts"].insert_all(rows, replace=True, batch_size=1000))


def _write_verdicts(tmp: Path, n: int, *, rowid: bool = False, insert_all: bool = False) -> dict:
    from ctrust_tui.trust.types import Verdict

    recs = _records(n)
    verdicts = [Verdict("wrong" if i % 3 else "not wrong", correct=bool(i % 2)) for i in range(n)]
    name = "v-rowid" if rowid else "v-insert-all" if insert_all else "v"
    s = _fresh(tmp, name)
    put = (lambda *a, rules: _put_verdicts_insert_all(s, *a, rules)) if insert_all else s.put_verdicts
    if rowid:  # the same table as sqlite-utils' create_table makes it (`transform` fails on WITHOUT ROWID)
        from ctrust_tui.store.schema import VERDICTS_V3

        s.db["verdicts"].drop()
        s.db.create_table("verdicts", VERDICTS_V3, pk=("run_id", "prompt_key", "rules"),
                          not_null=[c for c in VERDICTS_V3 if c not in ("correct", "leak", "scorer")])
        s.db["verdicts"].create_index(["run_id", "rules", "dimension", "scenario"], index_name="verdicts_dim")
        s.db["verdicts"].create_index(["record_id"], index_name="verdicts_record")
        assert "WITHOUT ROWID" not in s.db["verdicts"].schema.upper()
    s.add_run_prompts(1, recs)  # `judged` joins the prompts
    t0 = time.perf_counter()
    for i in range(0, n, RUNNER_BATCH):
        part = list(zip(recs[i:i + RUNNER_BATCH], verdicts[i:i + RUNNER_BATCH]))
        for rules in RULE_SETS:
            put(1, part, "ethics:x@1", rules=rules)
    dt = time.perf_counter() - t0
    assert s.counts()["verdicts"] == n * len(RULE_SETS)
    t1 = time.perf_counter()
    judged = sum(len(s.judged(1, d, "paper")) for d in ("ethics", "mmlu", "toxicity"))
    t_judged = time.perf_counter() - t1
    s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = (tmp / f"{name}.db").stat().st_size
    s.close()
    return {"per_s": n * len(RULE_SETS) / dt, "judged_s": t_judged, "judged": judged, "bytes": size}


def _add_run_prompts_insert_all(s, run_id: int, records) -> None:
    """`Store.add_run_prompts` written with insert_all (the store keeps executemany: this is why)."""
    from ctrust_tui.trust.types import canonical_json

    def do() -> None:
        s.db["prompts"].insert_all(
            ({"prompt_key": r.key, "record_id": r.id, "dimension": r.dimension, "scenario": r.scenario,
              "record": canonical_json(r.to_dict())} for r in records), ignore=True, batch_size=1000)
        s.db["run_prompts"].insert_all(
            ({"run_id": run_id, "prompt_key": r.key, "position": i} for i, r in enumerate(records)), ignore=True,
            batch_size=1000)

    s._write(do)


def _write_prompts(tmp: Path, n: int, *, insert_all: bool = False) -> float:
    recs = _records(n)
    s = _fresh(tmp, "p-insert-all" if insert_all else "p")
    t0 = time.perf_counter()
    if insert_all:
        _add_run_prompts_insert_all(s, 1, recs)
    else:
        s.add_run_prompts(1, recs)
    dt = time.perf_counter() - t0
    s.close()
    return n / dt


def _reads(cache: Path) -> dict:
    from ctrust_tui.store import open_store

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    with open_store(cache, readonly=True) as s:
        run_id = s.runs(1)[0].id

    def runs() -> None:
        with open_store(cache, readonly=True) as s:
            s.scores([r.id for r in s.runs(200)])

    def open_run(dim: str | None) -> None:
        with open_store(cache, readonly=True) as s:
            items = s.run_items(run_id, dim, limit=500)
            assert items and all(it.outputs and it.verdict for it in items)

    def search() -> None:
        with open_store(cache, readonly=True) as s:
            assert s.search("cannot help river", limit=200)

    return {"runs": timed(runs), "run_items_dim": timed(lambda: open_run("ethics")),
            "run_items_all": timed(lambda: open_run(None)), "search": timed(search)}


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(args.worker))
    import ctrust_tui.store as store_pkg

    out: dict = {"module": store_pkg.__file__}
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        if args.task == "writes":
            out["generations_b32"] = _write_generations(tmp, args.generations, RUNNER_BATCH)
            out[f"generations_b{LARGE_BATCH}"] = _write_generations(tmp, args.generations, LARGE_BATCH)
            out["verdicts"] = _write_verdicts(tmp, args.verdicts)
            out["prompts"] = _write_prompts(tmp, 20000)
        elif args.task == "ablation":
            out["commits_b32"] = _write_generations(tmp, args.generations, RUNNER_BATCH, library_commits=True)
            out[f"commits_b{LARGE_BATCH}"] = _write_generations(tmp, args.generations, LARGE_BATCH,
                                                               library_commits=True)
            out["verdicts_rowid"] = _write_verdicts(tmp, args.verdicts, rowid=True)
            out["verdicts_insert_all"] = _write_verdicts(tmp, args.verdicts, insert_all=True)
            out["prompts_insert_all"] = _write_prompts(tmp, 20000, insert_all=True)
        else:
            out.update(_reads(args.cache))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out))


# -- driver ------------------------------------------------------------------------------
def _run_worker(tree: Path, task: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(tree), "--task", task,
           "--generations", str(args.generations), "--verdicts", str(args.verdicts), "--cache", str(args.cache)]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=tempfile.gettempdir())
    data = json.loads(res.stdout.strip().splitlines()[-1])
    assert Path(data["module"]).resolve().is_relative_to(tree.resolve()), data["module"]
    return data


def _extract_before(commit: str, dest: Path) -> Path:
    """`git archive` of the old package (and the cache builder's folder) into `dest`: reads the
    object store only, so no worktree or ref of the repository changes."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "ctrust_tui"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    (dest / "scripts").mkdir(exist_ok=True)
    # today's builder (the old one predates the v3 `rules` column), run against the old package
    shutil.copy(REPO / "scripts" / "make_synthetic_cache.py", dest / "scripts" / "make_synthetic_cache.py")
    return dest


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default=BEFORE, help="commit whose store is 'before'")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/ctrust-bench-1m.db"),
                    help="1M-generation cache (built by the before store if missing, ~5-12 min)")
    ap.add_argument("--generations", type=int, default=200_000)
    ap.add_argument("--verdicts", type=int, default=50_000, help="records; x2 rule sets = verdict rows")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="write the results block into this markdown file")
    ap.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--task", default="reads", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        worker(args)
        return

    before_dir = _extract_before(args.before, Path(tempfile.mkdtemp(prefix="ctrust-store-before-")))
    if not args.cache.exists():
        print(f"building {args.cache} with the before store ...", file=sys.stderr)
        subprocess.run([sys.executable, str(before_dir / "scripts" / "make_synthetic_cache.py"), str(args.cache)],
                       check=True)
    started, load_before = time.strftime("%Y-%m-%d %H:%M"), _load()
    t_start = time.perf_counter()
    sides = {"before": before_dir, "after": REPO}
    got: dict[str, dict[str, list[dict]]] = {side: {"writes": [], "reads": []} for side in sides}
    ablation: list[dict] = []
    for rep in range(args.repeat):
        for task in ("reads", "writes"):
            order = list(sides) if rep % 2 == 0 else list(reversed(sides))  # alternate who goes first
            for side in order:
                got[side][task].append(_run_worker(sides[side], task, args))
                print(f"rep {rep + 1}: {side} {task} done", file=sys.stderr)
        ablation.append(_run_worker(REPO, "ablation", args))
    load_after = _load()
    shutil.rmtree(before_dir, ignore_errors=True)

    def row(label: str, task: str, key: str, unit: str, higher: bool, sub: str | None = None) -> str:
        def pick(side: str) -> float:
            samples = [s[key][sub] if sub else s[key] for s in got[side][task]]
            return max(samples) if higher else min(samples)

        b, a = pick("before"), pick("after")
        fmt = (lambda v: f"{v:,.0f}") if unit.endswith("/s") else (lambda v: f"{v * 1000:.1f}")
        return f"| {label} | {unit if unit.endswith('/s') else 'ms'} | {fmt(b)} | {fmt(a)} | {a / b:.2f} |"

    n_gen, n_ver = args.generations, args.verdicts * len(RULE_SETS)
    with_commits_32 = max(s["commits_b32"] for s in ablation)
    with_commits_big = max(s[f"commits_b{LARGE_BATCH}"] for s in ablation)
    rowid = {k: (max if k == "per_s" else min)(s["verdicts_rowid"][k] for s in ablation)
             for k in ("per_s", "judged_s", "bytes")}
    after_v = {k: (max if k == "per_s" else min)(s["verdicts"][k] for s in got["after"]["writes"])
               for k in ("per_s", "judged_s", "bytes")}
    v_insert_all = max(s["verdicts_insert_all"]["per_s"] for s in ablation)
    p_insert_all = max(s["prompts_insert_all"] for s in ablation)
    after_p = max(s["prompts"] for s in got["after"]["writes"])
    after_g32 = max(s["generations_b32"] for s in got["after"]["writes"])
    after_gbig = max(s[f"generations_b{LARGE_BATCH}"] for s in got["after"]["writes"])
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python "
        f"{platform.python_version()}, SQLite {__import__('sqlite3').sqlite_version}; run {started}, "
        f"{(time.perf_counter() - t_start) / 60:.0f} min; load average (1/5/15 min) {load_before} before, "
        f"{load_after} after (the machine was shared: compare the two columns, not runs).",
        f"Before: `{args.before}` (hand-written SQL); after: this checkout (sqlite-utils). Best of {args.repeat}, "
        "each a fresh process, before and after alternating.",
        "",
        "| operation | unit | before | after | after / before |",
        "|---|---|---:|---:|---:|",
        row(f"`put_generations`, {n_gen:,} rows in batches of {RUNNER_BATCH} (runner, CPU)", "writes",
            "generations_b32", "generations/s", True),
        row(f"`put_generations`, {n_gen:,} rows in batches of {LARGE_BATCH:,}", "writes",
            f"generations_b{LARGE_BATCH}", "generations/s", True),
        row(f"`put_verdicts`, {n_ver:,} rows (2 rule sets per {RUNNER_BATCH} records)", "writes", "verdicts",
            "verdicts/s", True, "per_s"),
        row("`add_run_prompts`, 20,000 records", "writes", "prompts", "records/s", True),
        row("1M cache: open read-only + `runs(200)` + `scores`", "reads", "runs", "s", False),
        row("1M cache: open a run, `run_items(run, 'ethics', limit=500)` with outputs", "reads",
            "run_items_dim", "s", False),
        row("1M cache: open a run, `run_items(run, None, limit=500)` with outputs", "reads", "run_items_all", "s",
            False),
        row("1M cache: `search('cannot help river', limit=200)`", "reads", "search", "s", False),
        "",
        "Why some SQL stays (after only, same runs):",
        "",
        "| variant | measured | store as built | ratio |",
        "|---|---:|---:|---:|",
        f"| sqlite-utils committing after every 71-row chunk, batches of {RUNNER_BATCH} (generations/s) | "
        f"{with_commits_32:,.0f} | {after_g32:,.0f} | {with_commits_32 / after_g32:.2f} |",
        f"| sqlite-utils committing after every 71-row chunk, batches of {LARGE_BATCH:,} (generations/s) | "
        f"{with_commits_big:,.0f} | {after_gbig:,.0f} | {with_commits_big / after_gbig:.2f} |",
        f"| `put_verdicts` with `insert_all` instead of executemany (verdicts/s) | {v_insert_all:,.0f} | "
        f"{after_v['per_s']:,.0f} | {v_insert_all / after_v['per_s']:.2f} |",
        f"| `add_run_prompts` with `insert_all` instead of executemany (records/s) | {p_insert_all:,.0f} | "
        f"{after_p:,.0f} | {p_insert_all / after_p:.2f} |",
        f"| verdicts as a rowid table (`create_table`): writes (verdicts/s) | {rowid['per_s']:,.0f} | "
        f"{after_v['per_s']:,.0f} | {rowid['per_s'] / after_v['per_s']:.2f} |",
        f"| verdicts as a rowid table: `judged` of 3 dimensions (ms) | {rowid['judged_s'] * 1000:.1f} | "
        f"{after_v['judged_s'] * 1000:.1f} | {rowid['judged_s'] / after_v['judged_s']:.2f} |",
        f"| verdicts as a rowid table: file size, {n_ver:,} verdicts (MiB) | {rowid['bytes'] / 2**20:.1f} | "
        f"{after_v['bytes'] / 2**20:.1f} | {rowid['bytes'] / after_v['bytes']:.2f} |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        write_results(args.out, text)


def write_results(out: Path, text: str) -> None:
    """Replace the block between this benchmark's markers in `out` (appended if absent)."""
    begin, end = "<!-- bench_store:begin -->", "<!-- bench_store:end -->"
    block = f"{begin}\n{text}\n{end}"
    old = out.read_text() if out.exists() else "# Performance\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        out.write_text(head + block + rest.split(end, 1)[1])
    else:
        out.write_text(old.rstrip() + "\n\n" + block + "\n")


if __name__ == "__main__":
    main()
