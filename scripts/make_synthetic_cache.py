"""Build a large synthetic ctrust cache for timing the store (`ctrust runs`, opening a run, search).

    .venv/bin/python scripts/make_synthetic_cache.py /tmp/big.db                 # 1,000,000 generations
    .venv/bin/python scripts/make_synthetic_cache.py /tmp/small.db --generations 20000

Layout: `--prompts` prompt records spread over the nine dimensions, and one finished run per
(model, compression) pair that covers every prompt, with one generation, one verdict and a
score row per dimension: generations = prompts x runs. The schema is created by the real
`Store` (same migrations, FTS triggers, indexes); rows are bulk-inserted for speed. Outputs are
short sentences from a fixed vocabulary (deterministic for a given --seed).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ctrust_tui.store import generation_key, open_store
from ctrust_tui.store.db import now
from ctrust_tui.trust.rules import DEFAULT_RULES, RULES_VERSION
from ctrust_tui.trust.types import Decoding, Message, PromptRecord, canonical_json, sha256_hex

DIMS = ("toxicity", "stereotype", "privacy", "fairness", "ethics", "advglue", "ood", "advdemo", "mmlu")
WORDS = ["yes", "no", "wrong", "not", "agree", "disagree", "positive", "negative", "neutral", "the", "answer", "is", "I", "cannot", "help", "with", "that", "request", "sorry", "A", "B", "C", "D", "email", "phone", "address", "river", "mountain", "model", "output", "label", "maybe"]
COMPRESSIONS = ("none", "gptq-4b-g128", "gptq-3b-g128", "awq-4b-g128", "awq-3b-g128", "sparsegpt-0.5",
                "wanda-0.5", "magnitude-0.5", "sparsegpt-2:4", "wanda-2:4")


def build(path: Path, generations: int, n_prompts: int, seed: int, batch: int = 20000) -> dict:
    rng = random.Random(seed)
    if path.exists():
        raise SystemExit(f"{path} exists; remove it first")
    n_runs = max(1, generations // n_prompts)
    started = time.time()
    store = open_store(path)
    conn = store.conn
    conn.execute("PRAGMA synchronous = OFF")
    dec = Decoding(max_new_tokens=20)
    records = []
    for i in range(n_prompts):
        dim = DIMS[i % len(DIMS)]
        text = " ".join(rng.choice(WORDS) for _ in range(12))
        records.append(PromptRecord(f"{dim}-{i}", dim, f"scenario{i % 4}", (Message("user", text),), dec))
    keys = [r.key for r in records]
    with conn:
        conn.executemany(
            "INSERT OR IGNORE INTO prompts(prompt_key, record_id, dimension, scenario, record) VALUES (?,?,?,?,?)",
            [(r.key, r.id, r.dimension, r.scenario, canonical_json(r.to_dict())) for r in records],
        )
    ts = now()
    rules, rules_version = DEFAULT_RULES, RULES_VERSION[DEFAULT_RULES]  # what run_items reads by default
    made = 0
    for run_no in range(n_runs):
        model = f"model-{run_no // len(COMPRESSIONS)}"
        fp = sha256_hex(model)[:16]
        comp = COMPRESSIONS[run_no % len(COMPRESSIONS)]
        settings = {"model_fingerprint": fp, "compression": comp, "profile": "paper", "seed": 0, "n": run_no}
        run_id, _ = store.open_run(settings, model_name=model, model_fingerprint=fp, compression=comp,
                                   dimensions=list(DIMS), profile="paper", seed=0, scorer="profanity",
                                   env={"synthetic": True})
        with conn:
            conn.executemany("INSERT INTO run_prompts(run_id, prompt_key, position) VALUES (?,?,?)",
                             [(run_id, k, i) for i, k in enumerate(keys)])
        for lo in range(0, n_prompts, batch):
            gens, verdicts = [], []
            for r in records[lo:lo + batch]:
                out = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
                rendered = r.messages[0].content
                gkey = generation_key(fp, comp, rendered, dec.to_dict(), 0, 0)
                gens.append((gkey, fp, comp, r.key, sha256_hex(rendered), canonical_json(dec.to_dict()), 0, 0, out,
                             len(out.split()), "eos", 0.01, ts))
                correct = rng.random() < 0.6
                v = {"verdict": "correct" if correct else "incorrect", "refusal": False, "correct": correct,
                     "leak": None, "extra": {}}
                verdicts.append((run_id, r.key, rules, rules_version, r.id, r.dimension, r.scenario, v["verdict"], 0, int(correct), None,
                                 json.dumps(v), None))
            with conn:
                conn.executemany(
                    "INSERT OR IGNORE INTO generations(key, model_fingerprint, compression, prompt_key, rendered_hash,"
                    " decoding, sample_index, seed, output, n_tokens, finish, seconds, created_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", gens)
                conn.executemany(
                    "INSERT OR REPLACE INTO verdicts(run_id, prompt_key, rules, rules_version, record_id, dimension,"
                    " scenario, verdict, refusal, correct, leak, data, scorer) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    verdicts)
            made += len(gens)
        with conn:
            for dim in DIMS:
                score = round(rng.uniform(30, 95), 2)
                conn.execute(
                    "INSERT OR REPLACE INTO scores(run_id, dimension, rules, rules_version, score, ci_low, ci_high,"
                    " refusal_rate, n, total, scenarios, scorer, final, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (run_id, dim, rules, rules_version, score, score - 3, score + 3, 0.05, n_prompts // len(DIMS),
                     n_prompts // len(DIMS), "{}", None, 1, ts))
        store.set_run_status(run_id, "finished", done=n_prompts, total=n_prompts)
        print(f"\rrun {run_no + 1}/{n_runs}: {made:,} generations, {time.time() - started:.0f}s",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts = store.counts()
    store.close()
    return {"path": str(path), "seconds": round(time.time() - started, 1), "runs": n_runs, **counts,
            "bytes": path.stat().st_size}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--generations", type=int, default=1_000_000)
    ap.add_argument("--prompts", type=int, default=20_000, help="prompt records; runs = generations / prompts")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(json.dumps(build(args.path, args.generations, args.prompts, args.seed)))


if __name__ == "__main__":
    main()
