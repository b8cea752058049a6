"""Benchmark the generation engine against DecodingTrust's one-prompt-at-a-time loop, and the store
on a large cache.

    .venv/bin/python benchmarks/bench_generate.py                          # CPU, default model
    .venv/bin/python benchmarks/bench_generate.py --out docs/performance.md
    python benchmarks/bench_generate.py --device cuda                      # on a GPU machine
    python benchmarks/bench_generate.py --device cuda --synthetic-1b       # random ~1B Llama, no weights
    .venv/bin/python benchmarks/bench_generate.py --dims toxicity,stereotype --force-greedy --tag decode --out docs/performance.md

Generation: the smoke prompts of the classification dimensions (short greedy outputs), rendered
with the model's chat template exactly as the runner does, are generated (a) one prompt at a
time with `model.generate` (greedy, same max_new_tokens: DecodingTrust's HF path) and (b) by the
engine (`Generator`: prompts sharing a long prefix grouped and that prefix's KV cache computed
once, length-sorted padded batches, KV cache, coalesced streaming); `--order single,batched,engine`
adds (c) the engine with prefix sharing off, to show what each part brings. All run in this
process, side by side, after one warm-up call; the table reports tokens/s, the ratio,
greedy mismatches and the peak RSS of each phase (Linux: VmHWM, reset between phases).

Store: `scripts/make_synthetic_cache.py` builds a cache of 1,000,000 generations (once; reused
from --cache-path if present), then `ctrust runs` (a fresh process) and opening a run (first
page of `Store.run_items`, as the browse screen does) are timed.

`--synthetic-1b` builds a randomly initialised Llama of about 1.1B parameters (TinyLlama's
shape) from a config; outputs are meaningless but speed and memory are representative.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_MODEL = REPO / "models" / "smollm2-135m-instruct"
CLASSIFICATION_DIMS = ("ethics", "fairness", "advglue", "ood", "advdemo", "mmlu")


# -- memory -------------------------------------------------------------------------
def _reset_peak_rss() -> bool:
    try:  # Linux >= 4.0: writing 5 resets VmHWM to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / (1024 * 1024) if sys.platform == "darwin" else ru / 1024


# -- models -------------------------------------------------------------------------
def _fallback_tokenizer(texts: list[str]):
    """A byte-level BPE trained on the prompts (for --synthetic-1b without a local model)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=8000, special_tokens=["<pad>", "<eos>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    fast.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
                          "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
    return fast


def load(args, texts: list[str]):
    import torch

    from ctrust_tui.engine.device import pick_device
    from ctrust_tui.engine.dtype import resolve_dtype

    dev = pick_device(args.device)
    if not args.synthetic_1b:
        from ctrust_tui.engine.loader import load_model

        loaded = load_model(Path(args.model), device=args.device, dtype=args.dtype)
        return loaded.model, loaded.tokenizer, loaded.device, f"{Path(args.model).name} ({loaded.dtype})"
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if (Path(args.model) / "tokenizer.json").is_file():
        tok = AutoTokenizer.from_pretrained(args.model)
    else:
        tok = _fallback_tokenizer(texts)
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    cfg = LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=args.synthetic_layers, num_attention_heads=32,
                      num_key_value_heads=4, vocab_size=len(tok), max_position_embeddings=4096,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    dtype = resolve_dtype(args.dtype, dev, cfg).dtype
    torch.manual_seed(0)
    with torch.device(dev):
        model = LlamaForCausalLM(cfg).to(dtype).eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    n = sum(p.numel() for p in model.parameters()) / 1e9
    return model, tok, dev, f"synthetic Llama {n:.2f}B ({dtype})"


# -- generation ---------------------------------------------------------------------
def prompts(dims: list[str], limit: int | None, force_greedy: bool = False, profile: str = "smoke",
            stratified: bool = False):
    """The first `limit` records per dimension (the documented workloads), or `ctrust run --limit`'s
    draw across scenarios with `stratified` (long-template configurations included)."""
    import dataclasses

    from ctrust_tui.trust import get_dimension, get_profile

    recs = []
    for d in dims:
        dim = get_dimension(d)
        if stratified:
            rs = dim.prompts(get_profile(profile), limit)
        else:
            rs = dim.build_prompts(get_profile(profile))
            rs = rs[:limit] if limit else rs
        if force_greedy:  # sampled dimensions (toxicity, stereotype) made comparable: greedy, n=1
            rs = [dataclasses.replace(r, decoding=dataclasses.replace(r.decoding, temperature=0.0, n=1)) for r in rs]
        recs.extend(rs)
    return recs


def one_at_a_time(model, tok, dev, items, eos_ids, seconds: dict | None = None) -> tuple[dict, int, float]:
    """DecodingTrust's HF loop: tokenize one prompt, generate greedily, decode the new tokens.
    `seconds` (if given) receives each prompt's wall time."""
    seconds = {} if seconds is None else seconds
    import torch

    from ctrust_tui.engine.generate import truncate_at_stop

    outs, n_tok = {}, 0
    t0 = time.perf_counter()
    for key, text, d in items:
        t_item = time.perf_counter()
        enc = tok(text, return_tensors="pt", add_special_tokens=False).to(dev)
        with torch.inference_mode():
            ids = model.generate(**enc, max_new_tokens=d.max_new_tokens, do_sample=False, temperature=None,
                                 top_p=None, top_k=None, pad_token_id=tok.pad_token_id)
        new = ids[0, enc["input_ids"].shape[1]:].tolist()
        cut = next((i for i, t in enumerate(new) if t in eos_ids), len(new))
        n_tok += cut
        outs[key] = truncate_at_stop(tok.decode(new[:cut], skip_special_tokens=True), d.stop)[0]
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds[key] = time.perf_counter() - t_item
    return outs, n_tok, time.perf_counter() - t0


def engine(model, tok, dev, items, max_batch, share_prefixes: bool = True) -> tuple[dict, int, float, str]:

    from ctrust_tui.backend import GenRequest
    from ctrust_tui.engine.generate import Generator

    gen = Generator(model, tok, dev, max_batch=max_batch, share_prefixes=share_prefixes)
    reqs = [GenRequest(k, t, d) for k, t, d in items]
    planned = gen._plan(reqs)
    fed = sum(b.prefix_len + sum(len(x) - b.prefix_len for x in b.ids) for b in planned)
    outs, n_tok, secs, batches, callbacks = _timed(gen, reqs, dev)
    shared = sum(1 for b in planned if b.prefix_len)
    extra = (f"{batches} batches ({shared} with a shared prefix), {fed} prompt tokens computed, "
             f"{callbacks} chunk callbacks")
    return outs, n_tok, secs, extra


def _timed(gen, reqs, dev) -> tuple[dict, int, float, int, int]:
    """Run `gen.generate` over `reqs`: outputs, generated tokens, seconds, result groups, chunk callbacks."""
    import torch

    callbacks = [0]
    outs, n_tok, groups = {}, 0, 0
    t0 = time.perf_counter()
    for results in gen.generate(reqs, on_chunks=lambda c: callbacks.__setitem__(0, callbacks[0] + 1)):
        groups += 1
        for r in results:
            outs[r.key] = r.text
            n_tok += r.n_tokens
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return outs, n_tok, time.perf_counter() - t0, groups, callbacks[0]


def continuous(model, tok, dev, items, max_batch) -> tuple[dict, int, float, str]:
    """transformers' continuous batching through the engine's ContinuousGenerator (`--scheduler continuous`)."""
    from ctrust_tui.backend import GenRequest
    from ctrust_tui.engine.continuous import ContinuousGenerator

    gen = ContinuousGenerator(model, tok, dev, max_batch=max_batch)
    outs, n_tok, secs, groups, callbacks = _timed(gen, [GenRequest(k, t, d) for k, t, d in items], dev)
    return outs, n_tok, secs, f"{gen.step_tokens}-token step budget, {groups} result groups, {callbacks} chunk callbacks"


def bench_generate(args) -> tuple[list[str], dict]:
    import torch
    import transformers

    from ctrust_tui.engine.generate import render_messages

    if args.threads:
        torch.set_num_threads(args.threads)
    recs = prompts(args.dims.split(","), args.limit, args.force_greedy, args.profile, args.stratified)
    model, tok, dev, label = load(args, [m.content for r in recs for m in r.messages])
    items = [(r.key, render_messages(tok, r.messages), r.decoding) for r in recs]
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos]) | {tok.eos_token_id}
    # warm-up (first-call allocations and kernel selection) for both paths
    one_at_a_time(model, tok, dev, items[:1], eos_ids)
    engine(model, tok, dev, items[:2], args.max_batch)
    if "continuous" in args.order:
        continuous(model, tok, dev, items[:2], args.max_batch)
    gc.collect()

    rows: dict = {}
    per_prompt: dict[str, float] = {}
    for phase in args.order.split(","):
        _reset_peak_rss()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        if phase == "single":
            outs, n_tok, secs = one_at_a_time(model, tok, dev, items, eos_ids, per_prompt)
            n_prompt = sum(len(tok(t, add_special_tokens=False).input_ids) for _, t, _ in items)
            extra = f"{len(items)} calls, {n_prompt} prompt tokens computed"
        elif phase in ("engine", "batched"):
            outs, n_tok, secs, extra = engine(model, tok, dev, items, args.max_batch, phase == "engine")
        elif phase == "continuous":
            outs, n_tok, secs, extra = continuous(model, tok, dev, items, args.max_batch)
        else:
            raise SystemExit(f"unknown phase {phase!r} in --order (single, batched, engine, continuous)")
        rows[phase] = {"outs": outs, "tokens": n_tok, "seconds": secs, "rss": _peak_rss_mb(), "extra": extra,
                       "gpu": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None}
        print(f"{phase}: {n_tok} tokens in {secs:.1f}s ({n_tok / secs:.1f} tok/s)", file=sys.stderr)
    single, eng = rows.get("single"), rows.get("engine") or rows.get("batched")
    mismatches = []
    if single and eng:
        mismatches = [k for k, _, _ in items if single["outs"][k] != eng["outs"][k]]
    ref_name = "single" if single else "engine"  # greedy outputs are checked against one-at-a-time when it ran
    ref = rows.get(ref_name)
    for other in ("batched", "continuous"):
        if ref and rows.get(other) and (other == "continuous" or rows.get("engine")):
            n_diff = sum(ref["outs"][k] != rows[other]["outs"][k] for k, _, _ in items)
            rows[other]["extra"] += f"; {n_diff} greedy mismatches vs {ref_name}"
    by_key = {r.key: r for r in recs}
    which = "drawn across scenarios," if args.stratified else "first"
    lines = [
        f"Model: {label}, device {dev}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"transformers {transformers.__version__}; {len(items)} {args.profile} prompts of {args.dims}"
        f"{f' ({which} {args.limit} per dimension)' if args.limit else ''} "
        f"(greedy, max_new_tokens {sorted({d.max_new_tokens for _, _, d in items})}).",
        "",
        "| path | generated tokens | seconds | tokens/s | peak RSS (MiB) | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, title in (("single", "one prompt at a time (`model.generate`, DecodingTrust)"),
                        ("batched", "engine, batching only (`share_prefixes=False`)"),
                        ("engine", "engine (`Generator`: batches + shared-prefix KV cache)"),
                        ("continuous", "continuous batching (`--scheduler continuous`, transformers' paged scheduler)")):
        r = rows.get(name)
        if r:
            gpu = f", peak GPU {r['gpu']:.0f} MiB" if r["gpu"] is not None else ""
            lines.append(f"| {title} | {r['tokens']} | {r['seconds']:.1f} | {r['tokens'] / r['seconds']:.1f} | "
                         f"{r['rss']:.0f} | {r['extra']}{gpu} |")
    if per_prompt:
        # where one-at-a-time time goes: what no batching can remove from a compute-bound prefill
        by_scenario: dict[str, list[float]] = {}
        for r in recs:
            by_scenario.setdefault(f"{r.dimension}/{r.scenario}", []).append(per_prompt[r.key])
        total = sum(per_prompt.values())
        top = sorted(by_scenario.items(), key=lambda kv: -sum(kv[1]))[:6]
        lines += ["", "One prompt at a time, the largest scenarios: " + "; ".join(
            f"{name} {sum(v):.1f}s ({100 * sum(v) / total:.0f}%, {len(v)} prompts)" for name, v in top) + "."]
    summary: dict = {"label": label}
    if single and eng:
        ratio = (eng["tokens"] / eng["seconds"]) / (single["tokens"] / single["seconds"])
        wall = single["seconds"] / eng["seconds"]
        lines += ["", f"**Speed-up: {ratio:.1f}x tokens/s ({wall:.1f}x wall time)**; greedy outputs identical for "
                      f"{len(items) - len(mismatches)}/{len(items)} prompts ({len(mismatches)} mismatches)."]
        summary.update(ratio=ratio, wall=wall, mismatches=len(mismatches))
        for k in mismatches[: args.show_mismatches]:
            a, b = single["outs"][k], eng["outs"][k]
            common = os.path.commonprefix([a, b])
            lines.append(f"- mismatch `{by_key[k].id}`: common prefix {len(common)} chars; single "
                         f"{a[len(common):][:60]!r} vs engine {b[len(common):][:60]!r}")
    return lines, summary


# -- store --------------------------------------------------------------------------
def _best_of(fn, n: int = 3) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_store(args) -> list[str]:
    from ctrust_tui.store import open_store

    path = Path(args.cache_path)
    if not path.exists():
        print(f"building {path} ({args.cache_rows:,} generations) ...", file=sys.stderr)
        subprocess.run([sys.executable, str(REPO / "scripts" / "make_synthetic_cache.py"), str(path),
                        "--generations", str(args.cache_rows)], check=True)
    with open_store(path, readonly=True) as s:
        counts = s.counts()
    ctrust = [sys.executable, "-m", "ctrust_tui.cli"] if not (Path(sys.executable).parent / "ctrust").exists() \
        else [str(Path(sys.executable).parent / "ctrust")]

    def runs_cli() -> None:
        subprocess.run([*ctrust, "runs", "--db", str(path)], check=True, capture_output=True)

    def runs_cli_json() -> None:
        subprocess.run([*ctrust, "runs", "--db", str(path), "--json"], check=True, capture_output=True)

    def startup() -> None:
        subprocess.run([sys.executable, "-c", "import ctrust_tui.cli"], check=True, capture_output=True)

    def runs_inproc() -> None:
        with open_store(path, readonly=True) as s:
            rs = s.runs(200)
            s.scores([r.id for r in rs])

    with open_store(path, readonly=True) as s:
        run_id = s.runs(1)[0].id

    def open_run(dim: str | None) -> None:
        with open_store(path, readonly=True) as s:
            items = s.run_items(run_id, dim, limit=500)
            assert items and all(it.outputs for it in items)

    def search() -> None:
        with open_store(path, readonly=True) as s:
            s.search("cannot help river", limit=200)

    timings = [
        ("`ctrust runs` (fresh process, table)", _best_of(runs_cli)),
        ("`ctrust runs --json` (fresh process)", _best_of(runs_cli_json)),
        ("  of which interpreter + `import ctrust_tui.cli`", _best_of(startup)),
        ("open store + `runs(200)` + `scores` (in process)", _best_of(runs_inproc)),
        ("open a run: `run_items(run, 'ethics', limit=500)` with outputs", _best_of(lambda: open_run("ethics"))),
        ("open a run: `run_items(run, None, limit=500)` with outputs", _best_of(lambda: open_run(None))),
        ("full-text search (`search`, 3 words, limit 200)", _best_of(search)),
    ]
    lines = [
        f"Cache: {counts['generations']:,} generations, {counts['runs']} runs, {counts['prompts']:,} prompts, "
        f"{counts['verdicts']:,} verdicts, {path.stat().st_size / 2**20:.0f} MiB (`{path}`); best of 3.",
        "",
        "| operation | seconds | target |",
        "|---|---:|---|",
    ]
    for name, secs in timings:
        target = "< 1 s" if not name.startswith("  ") and "search" not in name else ""
        lines.append(f"| {name} | {secs:.3f} | {target} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--device", default="cpu", help="cpu | cuda | mps | auto")
    ap.add_argument("--dtype", default="auto", help="auto | fp32 | bf16 | fp16 (as `ctrust run --dtype`)")
    ap.add_argument("--synthetic-1b", action="store_true", help="random ~1.1B Llama from a config (no weights)")
    ap.add_argument("--synthetic-layers", type=int, default=22, help=argparse.SUPPRESS)  # smoke checks only
    ap.add_argument("--dims", default=",".join(CLASSIFICATION_DIMS))
    ap.add_argument("--force-greedy", action="store_true",
                    help="greedy n=1 for sampled dimensions (e.g. --dims toxicity,stereotype: decode-bound)")
    ap.add_argument("--limit", type=int, default=None, help="at most N prompts per dimension")
    ap.add_argument("--stratified", action="store_true", help="--limit draws across scenarios, as `ctrust run`")
    ap.add_argument("--max-batch", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--profile", default="smoke", help="prompt profile: smoke | quick | paper")
    ap.add_argument("--order", default="single,engine",
                    help="phases to run, in order: single, batched (no shared prefixes), engine, continuous")
    ap.add_argument("--show-mismatches", type=int, default=5)
    ap.add_argument("--skip-generate", action="store_true")
    ap.add_argument("--skip-store", action="store_true")
    ap.add_argument("--cache-path", default="/tmp/ctrust-bench-1m.db")
    ap.add_argument("--cache-rows", type=int, default=1_000_000)
    ap.add_argument("--tag", default="", help="name of the results block in --out (several workloads, one file)")
    ap.add_argument("--out", type=Path, default=None, help="write the markdown (e.g. docs/performance.md)")
    args = ap.parse_args(argv)

    started = time.strftime("%Y-%m-%d %H:%M")
    header = [f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
              f"Python {platform.python_version()}; run {started}.", ""]
    body: list[str] = []
    if not args.skip_generate:
        gen_lines, summary = bench_generate(args)
        body += ["### Generation", "", *gen_lines, ""]
        print(json.dumps(summary), file=sys.stderr)
    if not args.skip_store:
        body += ["### Store", "", *bench_store(args), ""]
    text = "\n".join(header + body)
    print(text)
    if args.out:
        write_results(args.out, text, args.tag)


def write_results(out: Path, text: str, tag: str = "") -> None:
    """Replace the generated block of `out` (between markers), keeping the hand-written prose."""
    name = f"bench_generate{':' + tag if tag else ''}"
    MARK_BEGIN, MARK_END = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{MARK_BEGIN}\n{text}\n{MARK_END}"
    if out.exists():
        old = out.read_text()
        if MARK_BEGIN in old and MARK_END in old:
            head, rest = old.split(MARK_BEGIN, 1)
            out.write_text(head + block + rest.split(MARK_END, 1)[1])
            return
        out.write_text(old.rstrip() + "\n\n" + block + "\n")
        return
    out.write_text(f"# Performance\n\n{block}\n")


if __name__ == "__main__":
    main()
