"""End to end: a whole `ctrust run` against DecodingTrust-style generation, side by side.

    .venv/bin/python benchmarks/bench_run.py                                  # CPU, default model
    .venv/bin/python benchmarks/bench_run.py --dtypes fp32,bf16 --out docs/performance.md
    python benchmarks/bench_run.py --device cuda --dtypes auto                 # on a GPU machine

Workload (issue #16): the first `--limit` (20) quick-profile prompts of advdemo, mmlu, advglue,
ethics and ood, rendered with the model's chat template exactly as the runner renders them.

- **baseline**: a fresh Python process that loads the model in float32 with transformers and
  generates one prompt at a time with `model.generate` (greedy, each prompt's max_new_tokens),
  DecodingTrust's Hugging Face path; its wall time includes interpreter start, imports and load.
- **ctrust**: a fresh `ctrust run --profile quick --limit N --dimensions ... --dtype D` into an
  empty cache; its wall time includes start, load, generation, judging under both rule sets,
  bootstrap intervals and cache writes.

Both run back to back in this one benchmark (alternating, `--repeat` times; the median counts).
Greedy outputs are compared prompt by prompt (the ctrust outputs are read back from the cache).
For a dtype other than fp32 the table also gives the share of prompts whose verdict (paper rules)
equals the fp32 run's, per dimension.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

DEFAULT_MODEL = REPO / "models" / "smollm2-135m-instruct"
DIMS = "advdemo,mmlu,advglue,ethics,ood"


def _records(dims: str, limit: int):
    from ctrust_tui.trust import get_dimension, get_profile

    out = []
    for d in dims.split(","):
        out.extend(get_dimension(d).build_prompts(get_profile("quick"))[:limit])
    return out


def baseline_phase(args) -> None:
    """Runs in its own process: load, then one prompt at a time; writes {record key: output}."""
    import torch
    from bench_generate import one_at_a_time
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ctrust_tui.engine.generate import render_messages

    dev = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).to(dev).eval()
    recs = _records(args.dims, args.limit)
    items = [(r.key, render_messages(tok, r.messages), r.decoding) for r in recs]
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos]) | {tok.eos_token_id}
    outs, n_tok, _ = one_at_a_time(model, tok, dev, items, eos_ids)
    Path(args.outputs).write_text(json.dumps({"outputs": outs, "tokens": n_tok}))


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return took


def _ctrust_outputs(db: Path) -> tuple[dict[str, str], dict[str, dict[str, str]], str]:
    """(record key -> first output, dimension -> {record key -> paper verdict}, dtype choice) of the run."""
    from ctrust_tui.store import open_store

    with open_store(db, readonly=True) as store:
        (run,) = store.runs()
        outs: dict[str, str] = {}
        verdicts: dict[str, dict[str, str]] = {}
        for item in store.run_items(run.id, None, rules="paper"):
            outs[item.record.key] = item.outputs[0] if item.outputs else ""
            if item.verdict is not None:
                verdicts.setdefault(item.record.dimension, {})[item.record.key] = item.verdict.verdict
        return outs, verdicts, str(run.env.get("dtype_choice") or run.env.get("dtype"))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phase", default="", help=argparse.SUPPRESS)  # internal: the baseline process
    ap.add_argument("--outputs", default="", help=argparse.SUPPRESS)
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dims", default=DIMS)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--dtypes", default="fp32", help="ctrust runs to time, comma-separated (auto | fp32 | bf16 | fp16)")
    ap.add_argument("--repeat", type=int, default=1, help="alternate baseline and ctrust this many times (median)")
    ap.add_argument("--tag", default="end-to-end")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.phase == "baseline":
        baseline_phase(args)
        return

    work = Path(tempfile.mkdtemp(prefix="ctrust-bench-run-"))
    env = {**os.environ, "CTRUST_DTYPE": "auto"}  # `--dtype auto` means what it means on this machine
    base_cmd = [sys.executable, __file__, "--phase", "baseline", "--model", args.model, "--device", args.device,
                "--dims", args.dims, "--limit", str(args.limit), "--outputs", str(work / "baseline.json")]
    times: dict[str, list[float]] = {"baseline": []}
    results: dict[str, tuple[dict, dict, str]] = {}
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    for rep in range(args.repeat):
        times["baseline"].append(_timed(base_cmd, env))
        print(f"baseline #{rep + 1}: {times['baseline'][-1]:.1f} s", file=sys.stderr)
        for d in dtypes:
            db = work / f"{d}-{rep}.db"
            cmd = [sys.executable, "-m", "ctrust_tui.cli", "--db", str(db), "--models-dir",
                   str(Path(args.model).parent), "run", "--model", Path(args.model).name, "--profile", "quick",
                   "--limit", str(args.limit), "--dimensions", args.dims, "--device", args.device, "--dtype", d]
            times.setdefault(d, []).append(_timed(cmd, env))
            results[d] = _ctrust_outputs(db)
            print(f"ctrust --dtype {d} #{rep + 1}: {times[d][-1]:.1f} s", file=sys.stderr)
    base = json.loads((work / "baseline.json").read_text())["outputs"]
    med = {k: statistics.median(v) for k, v in times.items()}
    import torch
    import transformers

    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python "
        f"{platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}; "
        f"run {time.strftime('%Y-%m-%d %H:%M')}; load average before: {os.getloadavg()[0]:.2f}.",
        "",
        f"Workload: first {args.limit} quick prompts of {args.dims} ({len(base)} prompts), model "
        f"{Path(args.model).name}, device {args.device}; median of {args.repeat} alternating repeat(s).",
        "",
        "| path | wall seconds (each) | median | vs baseline | greedy outputs equal to the baseline's | dtype |",
        "|---|---|---:|---:|---:|---|",
        f"| DecodingTrust-style: one prompt at a time, `model.generate`, fp32 (load included) | "
        f"{', '.join(f'{t:.1f}' for t in times['baseline'])} | {med['baseline']:.1f} | 1.00x | - | float32 |",
    ]
    fp32_verdicts = results.get("fp32", (None, None, ""))[1]
    agreement: list[str] = []
    for d in dtypes:
        outs, verdicts, choice = results[d]
        same = sum(outs.get(k) == v for k, v in base.items())
        lines.append(f"| `ctrust run --dtype {d}` (load, generation, judging, cache writes) | "
                     f"{', '.join(f'{t:.1f}' for t in times[d])} | {med[d]:.1f} | "
                     f"**{med['baseline'] / med[d]:.2f}x** | {same}/{len(base)} | {choice} |")
        if d != "fp32" and fp32_verdicts:
            per_dim = []
            for dim, vs in sorted(verdicts.items()):
                ref = fp32_verdicts.get(dim, {})
                both = [k for k in vs if k in ref]
                per_dim.append(f"{dim} {sum(vs[k] == ref[k] for k in both)}/{len(both)}")
            agreement.append(f"- `--dtype {d}` verdicts equal to fp32's (paper rules): " + ", ".join(per_dim))
    if agreement:
        lines += ["", *agreement]
    text = "\n".join(lines)
    print(text)
    if args.out:
        from bench_generate import write_results

        write_results(args.out, text, args.tag)


if __name__ == "__main__":
    main()
