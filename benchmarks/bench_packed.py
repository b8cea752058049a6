"""Packed vs fake-quant vs dense variants of a model: size on disk, load time, peak RSS, exactness.

    .venv/bin/python benchmarks/bench_packed.py                      # default model, 4-bit g128, 3-bit g128, 2:4
    .venv/bin/python benchmarks/bench_packed.py --model PATH --specs rtn-4b-g128 --work /tmp/bench --out FILE.md

For each spec the variant is written twice under `--work` (never under models/): as a dense
fake-quant checkpoint (`compress_model(pack=False)`, what ctrust stored before packing) and in
the default storage (packed compressed-tensors where the format can hold it). Each folder is then
loaded `--loads` times by the engine's loader (`engine.loader.load_model`, CPU), every load in its
own process, for the load time (median) and the process's peak RSS (max). Exactness, in this
process: the packed variant's loaded weights equal the fake-quant ones bit for bit (float32), and
greedy generations on `--prompts` quick-profile prompts (ethics, then fairness, chat template
applied) are token for token identical.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_MODEL = "models/smollm2-135m-instruct"
DEFAULT_SPECS = "rtn-4b-g128,rtn-3b-g128,magnitude-2:4"


def _peak_rss_mb() -> float:
    """This process's own high-water RSS: VmHWM (ru_maxrss survives fork + exec on Linux, so a child
    would report its parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def single_load(path: str, spec: str) -> dict:
    from ctrust_tui.compress.spec import parse_spec
    from ctrust_tui.engine.loader import load_model

    t = time.perf_counter()
    loaded = load_model(Path(path), parse_spec(spec), "cpu")
    seconds = time.perf_counter() - t
    return {"load_s": seconds, "peak_rss_mb": _peak_rss_mb(), "memory_mb": loaded.memory_bytes / 1e6}


def _loads(path: Path, spec: str, n: int) -> dict:
    rows = []
    for _ in range(n):
        out = subprocess.run([sys.executable, __file__, "--single-load", str(path), spec], capture_output=True,
                             text=True, check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"load_s": statistics.median(r["load_s"] for r in rows), "load_all_s": [round(r["load_s"], 2) for r in rows],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rows), "memory_mb": rows[0]["memory_mb"]}


def _weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))


def _prompts(n: int) -> list:
    from ctrust_tui.trust import get_dimension, get_profile

    out: list = []
    for dim in ("ethics", "fairness", "stereotype"):
        out += list(get_dimension(dim).build_prompts(get_profile("quick")))
        if len(out) >= n:
            break
    return out[:n]


def _greedy(loaded, records, new_tokens: int) -> list[list[int]]:
    import torch

    from ctrust_tui.engine.generate import render_messages

    tok, model = loaded.tokenizer, loaded.model
    texts = [render_messages(tok, r.messages) for r in records]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # batches of similar length: little padding
    out: dict[int, list[int]] = {}
    with torch.no_grad():
        for b in range(0, len(order), 10):
            idx = order[b : b + 10]
            enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            gen = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            for i, row in zip(idx, gen):
                out[i] = row[enc["input_ids"].shape[1]:].tolist()
    return [out[i] for i in range(len(texts))]


def exactness(fake: Path, packed: Path, spec: str, n_prompts: int, new_tokens: int) -> dict:
    import torch

    from ctrust_tui.compress.spec import parse_spec
    from ctrust_tui.engine.loader import load_model

    a = load_model(fake, parse_spec(spec), "cpu")
    b = load_model(packed, parse_spec(spec), "cpu")
    sa, sb = a.model.state_dict(), b.model.state_dict()
    differing = [k for k, v in sa.items() if not torch.equal(v.float().view(torch.int32), sb[k].float().view(torch.int32))]
    records = _prompts(n_prompts)
    ga, gb = _greedy(a, records, new_tokens), _greedy(b, records, new_tokens)
    return {"tensors": len(sa), "tensors_differing": differing, "prompts": len(records),
            "generations_identical": sum(x == y for x, y in zip(ga, gb)), "new_tokens": new_tokens}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--specs", default=DEFAULT_SPECS)
    ap.add_argument("--work", default="/tmp/ctrust-bench-packed")
    ap.add_argument("--loads", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=50)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-exactness", action="store_true", help="Sizes and loads only.")
    ap.add_argument("--single-load", nargs=2, metavar=("PATH", "SPEC"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.single_load:
        print(json.dumps(single_load(*args.single_load)))
        return

    from ctrust_tui.compress.api import compress_model
    from ctrust_tui.compress.spec import parse_spec

    base = Path(args.model).resolve()
    work = Path(args.work)
    name = base.name
    started = time.strftime("%Y-%m-%d %H:%M")
    load_before = os.getloadavg()[0]
    rows = [{"variant": "dense (base)", "spec": "none", "folder": base, "format": "dense float32"}]
    checks = {}
    for text in args.specs.split(","):
        spec = parse_spec(text)
        fake = compress_model(base, spec, base_name=name, models_dir=work / "fake-quant", device="cpu",
                              measure_perplexity=False, pack=False)
        packed = compress_model(base, spec, base_name=name, models_dir=work / "packed", device="cpu",
                                measure_perplexity=False)
        st = packed.metadata["storage"]
        rows.append({"variant": "fake-quant", "spec": text, "folder": fake.path, "format": "dense float32"})
        fmt = (f"packed {spec.bits}-bit, g{st.get('packed_group_size')}" if st["format"] == "compressed-tensors"
               else "dense (no packed form)")
        rows.append({"variant": "packed" if st["format"] == "compressed-tensors" else "default storage",
                     "spec": text, "folder": packed.path, "format": fmt, "reason": st.get("reason")})
        if st["format"] == "compressed-tensors" and not args.no_exactness:
            checks[text] = exactness(fake.path, packed.path, text, args.prompts, args.new_tokens)
    dense_bytes = _weights_bytes(base)
    for row in rows:
        row["bytes"] = _weights_bytes(row["folder"])
        row.update(_loads(row["folder"], row["spec"], args.loads))
    load_after = os.getloadavg()[0]

    lines = [f"Run {started}, load average {load_before:.1f} -> {load_after:.1f} on "
             f"{os.cpu_count()} CPUs (timings under that load); {args.loads} loads per folder, each in a fresh "
             "process (median load time, max peak RSS; page cache warm).", "",
             "| variant | spec | storage | weights on disk | vs dense | load (s) | peak RSS (MB) |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['spec']} | {r['format']} | {r['bytes'] / 1e6:.1f} MB | "
                     f"{100 * r['bytes'] / dense_bytes:.1f}% | {r['load_s']:.2f} | {r['peak_rss_mb']:.0f} |")
    lines.append("")
    for text, c in checks.items():
        lines.append(f"- {text}: {len(c['tensors_differing'])} of {c['tensors']} loaded tensors differ from the "
                     f"fake-quant model (float32, bit for bit); greedy generations identical on "
                     f"{c['generations_identical']}/{c['prompts']} quick prompts ({c['new_tokens']} new tokens)")
    for r in rows:
        if r.get("reason"):
            lines.append(f"- {r['spec']} stays dense: {r['reason']}")
    text = "\n".join(lines) + "\n"
    print(text)
    print(json.dumps({"rows": rows, "checks": checks}, default=str, indent=1), file=sys.stderr)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
