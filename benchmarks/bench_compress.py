"""Benchmark the compression methods: time, peak memory, WikiText-2 perplexity before/after.

    .venv/bin/python benchmarks/bench_compress.py                       # all methods, default model, CPU
    .venv/bin/python benchmarks/bench_compress.py --methods gptq-4b-g64,awq-4b-g64 --out docs/bench.md
    .venv/bin/python benchmarks/bench_compress.py --gpu-synthetic        # random ~1B Llama on a GPU

Each method runs in its own subprocess (fresh model load, honest peak RSS), on the same
calibration windows (C4, 32 x 512 by default) and the perplexity slice of
`ctrust_tui.compress.perplexity.DEFAULT_SLICE`. Nothing is written under models/.
The script prints a markdown table and checks the literature ordering:
GPTQ <= RTN and AWQ <= RTN in perplexity at 4 and 3 bits; SparseGPT and Wanda <= magnitude at
0.5 and 2:4 (`--strict` turns a violation into exit code 1).

`--gpu-synthetic` builds a randomly initialised Llama of about 1.1B parameters (TinyLlama's
shape) from a config (no weights needed) and reports time and peak GPU memory per method;
perplexity is meaningless for random weights and is not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_MODEL = "models/smollm2-135m-instruct"
DEFAULT_METHODS = (
    "rtn-4b-g64,gptq-4b-g64,awq-4b-g64,rtn-3b-g64,gptq-3b-g64,awq-3b-g64,"
    "magnitude-0.5,wanda-0.5,sparsegpt-0.5,magnitude-2:4,wanda-2:4,sparsegpt-2:4"
)
ORDER_CHECKS = (
    ("gptq-4b-g64", "rtn-4b-g64"), ("awq-4b-g64", "rtn-4b-g64"),
    ("gptq-3b-g64", "rtn-3b-g64"), ("awq-3b-g64", "rtn-3b-g64"),
    ("sparsegpt-0.5", "magnitude-0.5"), ("wanda-0.5", "magnitude-0.5"),
    ("sparsegpt-2:4", "magnitude-2:4"), ("wanda-2:4", "magnitude-2:4"),
)
TARGETS_S = {"gptq-4b": 60, "sparsegpt": 70, "wanda": 50, "awq": 600}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_single(args) -> dict:
    """One method in this process: load, calibrate, compress, perplexity. Returns a JSON row."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ctrust_tui.compress.api import _dispatch
    from ctrust_tui.compress.calibration import load_calibration_ids
    from ctrust_tui.compress.perplexity import DEFAULT_SLICE, PerplexitySlice, measure_perplexity
    from ctrust_tui.compress.spec import parse_spec
    from ctrust_tui.compress.types import CalibrationConfig

    spec = parse_spec(args.single)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    row: dict = {"spec": str(spec)}
    t = time.perf_counter()
    ids = None
    if spec.calibrated:
        ids = load_calibration_ids(tok, CalibrationConfig(source="c4", nsamples=args.nsamples, seqlen=args.seqlen))
    row["calibrate_s"] = round(time.perf_counter() - t, 2)
    if not spec.is_dense:
        t = time.perf_counter()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        stats = _dispatch(model, spec, ids, "cpu", None, None, args.calib_precision)
        row["forward_dtype"] = "float32" if spec.method == "awq" else stats.get("forward_dtype")  # None: no calibration
        row["compress_s"] = round(time.perf_counter() - t, 2)
        ru2 = resource.getrusage(resource.RUSAGE_SELF)
        row["compress_cpu_s"] = round(ru2.ru_utime + ru2.ru_stime - ru.ru_utime - ru.ru_stime, 1)
    else:
        row["compress_s"] = 0.0
    t = time.perf_counter()
    sl = PerplexitySlice(n_windows=args.ppl_windows, seqlen=DEFAULT_SLICE.seqlen)
    row["ppl"] = measure_perplexity(model, tok, sl, device="cpu")["value"]
    row["ppl_windows"] = sl.n_windows
    row["ppl_s"] = round(time.perf_counter() - t, 2)
    row["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    row["load_avg_1m"] = round(os.getloadavg()[0], 2)  # other work on the machine slows every figure
    return row


def run_gpu_synthetic(args) -> list[dict]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ctrust_tui.compress.api import _dispatch
    from ctrust_tui.compress.spec import parse_spec

    if not torch.cuda.is_available():
        print("--gpu-synthetic needs a CUDA GPU; none is available here.", file=sys.stderr)
        raise SystemExit(2)
    cfg = LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=args.layers,
                      num_attention_heads=32, num_key_value_heads=4, vocab_size=32000,
                      max_position_embeddings=4096, rope_theta=10000.0)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (args.nsamples, args.seqlen), generator=g)
    rows = []
    for text in args.methods.split(","):
        spec = parse_spec(text)
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = LlamaForCausalLM(cfg).to(torch.float16).eval()
        n_params = sum(p.numel() for p in model.parameters())
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        _dispatch(model, spec, ids if spec.calibrated else None, "cuda", None, None)
        torch.cuda.synchronize()
        rows.append({"spec": str(spec), "compress_s": round(time.perf_counter() - t, 2),
                     "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                     "params_m": round(n_params / 1e6, 1)})
        print(json.dumps(rows[-1]), flush=True)
        del model
        torch.cuda.empty_cache()
    return rows


def table(rows: list[dict], base_ppl: float | None) -> str:
    lines = ["| method | forwards | compress (s) | calib (s) | peak RSS (MB) | ppl before | ppl after | Δ ppl "
             "| load avg |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['spec']} | error: {r['error'][:60]} | | | | | | | |")
            continue
        before = f"{base_ppl:.2f}" if base_ppl else ""
        delta = f"{r['ppl'] - base_ppl:+.2f}" if base_ppl else ""
        fwd = (r.get("forward_dtype") or "–").replace("bfloat16", "bf16").replace("float32", "fp32")
        lines.append(f"| {r['spec']} | {fwd} | {r['compress_s']:.1f} | {r['calibrate_s']:.1f} | {r['peak_rss_mb']:.0f} "
                     f"| {before} | {r['ppl']:.2f} | {delta} | {r.get('load_avg_1m', '')} |")
    return "\n".join(lines)


def check_order(rows: list[dict]) -> list[str]:
    ppl = {r["spec"]: r["ppl"] for r in rows if "ppl" in r}
    out = []
    for better, worse in ORDER_CHECKS:
        if better in ppl and worse in ppl:
            ok = ppl[better] <= ppl[worse]
            out.append(f"{'PASS' if ok else 'FAIL'}: {better} ({ppl[better]:.2f}) <= {worse} ({ppl[worse]:.2f})")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--methods", default=DEFAULT_METHODS, help="comma-separated specs")
    p.add_argument("--nsamples", type=int, default=32)
    p.add_argument("--seqlen", type=int, default=512)
    p.add_argument("--calib-precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="precision of the GPTQ/SparseGPT/Wanda calibration forwards (as `ctrust compress`)")
    p.add_argument("--ppl-windows", type=int, default=16,
                   help="perplexity windows of 512 tokens (default 16 = the compression.json slice)")
    p.add_argument("--out", help="write the markdown table (and raw JSON rows) to this file")
    p.add_argument("--strict", action="store_true", help="exit 1 when the literature ordering fails")
    p.add_argument("--gpu-synthetic", action="store_true", help="random ~1B Llama on CUDA: time and memory")
    p.add_argument("--layers", type=int, default=22, help="--gpu-synthetic: decoder layers (22 = 1.1B)")
    p.add_argument("--single", help=argparse.SUPPRESS)
    p.add_argument("--from-rows", help="re-render the table from a file of JSON rows (one per line)")
    args = p.parse_args(argv)

    if args.from_rows:
        rows = [json.loads(ln) for ln in Path(args.from_rows).read_text().splitlines() if ln.startswith("{")]
        base = next((r.get("ppl") for r in rows if r["spec"] == "none"), None)
        rest = [r for r in rows if r["spec"] != "none"]
        print(table(rest, base))
        print("\n".join(check_order(rest)))
        return 0
    if args.single:
        print("ROW " + json.dumps(run_single(args)), flush=True)
        return 0
    if args.gpu_synthetic:
        rows = run_gpu_synthetic(args)
        md = "| method | compress (s) | peak GPU (MB) | params (M) |\n|---|---:|---:|---:|\n" + "\n".join(
            f"| {r['spec']} | {r['compress_s']:.1f} | {r['peak_gpu_mb']:.0f} | {r['params_m']} |" for r in rows)
        print(md)
        if args.out:
            Path(args.out).write_text(md + "\n")
        return 0

    if not (Path(args.model) / "config.json").is_file():
        print(f"model {args.model} not found; import the default model first:\n"
              "    .venv/bin/ctrust models import-default", file=sys.stderr)
        return 2
    rows = []
    for text in ["none"] + [m for m in args.methods.split(",") if m.strip()]:
        cmd = [sys.executable, __file__, "--single", text.strip(), "--model", args.model,
               "--nsamples", str(args.nsamples), "--seqlen", str(args.seqlen),
               "--ppl-windows", str(args.ppl_windows), "--calib-precision", args.calib_precision]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("ROW ")), None)
        if line is None:
            row = {"spec": text, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
        else:
            row = json.loads(line[4:])
            row["wall_s"] = round(time.perf_counter() - t, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = rows[0].get("ppl")
    md = table(rows[1:], base)
    checks = check_order(rows[1:])
    print(md)
    print("\n".join(checks))
    if args.out:
        Path(args.out).write_text(md + "\n\n" + "\n".join(f"- {c}" for c in checks) + "\n\n<!-- raw rows\n"
                                  + "\n".join(json.dumps(r) for r in rows) + "\n-->\n")
    if args.strict and any(c.startswith("FAIL") for c in checks):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
