"""A Run = model x compression spec x dimensions x profile x decoding x seed.

resolve model -> compress (or reuse the cached variant) -> load -> build prompts -> serve what
the cache already has -> generate the rest in batches -> judge -> score -> store, emitting typed
events throughout. Each finished batch is committed before the next starts, so a killed run
resumes where it stopped. This module imports no torch at import time: the engine and the
compressor are imported only when a real run starts (`ctrust browse` stays torch-free).
"""

from __future__ import annotations

import os
import platform
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from . import __version__
from .backend import Backend, GenRequest, GenResult
from .compress.spec import CompressionSpec
from .compress.types import CalibrationConfig, CompressProgress
from .errors import Cancelled, CtrustError
from .events import (
    CompressionProgress,
    DimensionScoreUpdated,
    Event,
    GenerationFinished,
    ModelLoaded,
    Notice,
    Progress,
    PromptsStarted,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    TokensGenerated,
)
from .modelstore import ModelRef, resolve_model
from .seed_groups import GROUP_KEY, group_entry
from .store import Store, generation_key, open_store
from .store.db import engine_tag
from .store.runlock import RunLock
from .trust import JudgeContext, get_dimension, get_profile
from .trust.prompt_format import MODEL
from .trust.rules import DEFAULT_RULES, RULE_SETS, scorer_identity
from .trust.sequential import prefix_size, stratified_order
from .trust.types import DimensionResult, PromptRecord, Verdict, sha256_hex

EventFn = Callable[[Event], None]


@dataclass(frozen=True)
class RunConfig:
    model: str
    compressions: tuple[CompressionSpec, ...]
    dimensions: tuple[str, ...]
    profile: str = "smoke"
    seed: int = 0
    device: str = "auto"
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    toxicity_scorer: str | None = None
    db_path: Path = Path("cache.db")
    models_dir: Path = Path("models")
    max_batch: int | None = None
    limit: int | None = None  # cap on prompts per dimension (tests, demos)
    rules: str = DEFAULT_RULES  # the rule set events and the final table report; both sets are stored
    prompt_format: str = MODEL  # "model" (the model's chat template) | "fork" | "fork:<template>"
    dtype: str = "auto"  # auto | fp32 | bf16 | fp16 (engine.dtype: auto measures fp32 vs bf16 on a CPU)
    # auto | static | continuous (engine.continuous.resolve_scheduler): how outputs are scheduled, not
    # what they are, so it is kept out of the run's settings (greedy outputs are the same tokens)
    scheduler: str = "auto"
    # adaptive evaluation (adaptive.py): evaluate only this stratified prefix (share of its prompts) of each
    # dimension; the run's identity is the whole ordered set, so successive rounds grow one run
    fractions: tuple[tuple[str, float], ...] | None = None
    # calibration-seed group (`ctrust run --calib-seeds K`, seed_groups.py): the K calibration seeds this
    # run's `calibration.seed` is one of; None for a run outside a group (its settings stay as they were)
    calib_seeds: tuple[int, ...] | None = None


BackendFactory = Callable[[ModelRef, CompressionSpec, RunConfig, Callable[[CompressProgress], None],
                           Callable[[], bool]], Backend]


def compression_label(spec: CompressionSpec, calibration: CalibrationConfig) -> str:
    """Spec string, plus the calibration tag when a calibrated method used non-default data."""
    label = str(spec)
    if spec.calibrated and calibration != CalibrationConfig():
        label += f"@{calibration.tag}"
    return label


def calib_seed_configs(cfg: RunConfig) -> list[RunConfig]:
    """One config per calibration seed of `cfg.calib_seeds` (each with that seed in its calibration),
    or `[cfg]` outside a group. The decoding seed (`cfg.seed`) is the same in every one."""
    if cfg.calib_seeds is None:
        return [cfg]
    return [replace(cfg, calibration=replace(cfg.calibration, seed=s)) for s in cfg.calib_seeds]


def real_backend(model: ModelRef, spec: CompressionSpec, cfg: RunConfig,
                 progress: Callable[[CompressProgress], None], cancel: Callable[[], bool]) -> Backend:
    """Compress (or reuse the cached variant) and load the model: the only torch entry point."""
    from .compress.fingerprint import model_fingerprint
    from .engine.backend import EngineBackend
    from .engine.loader import load_model
    from .modelstore import check_model_folder

    check_model_folder(model.path)  # untrusted folder: no custom code, no pickle-only weights, no links out
    base_fp = model_fingerprint(model.path)
    weights_fp = base_fp
    path = model.path
    info: dict[str, Any] = {}
    if spec.info.writes_folder:
        from .compress.api import compress_model

        compressed = compress_model(model.path, spec, base_name=model.name, models_dir=cfg.models_dir,
                                    calibration=cfg.calibration, device=cfg.device, progress=progress,
                                    cancel=cancel)
        path = compressed.path
        info["compressed_path"] = str(path)
        info["reused"] = compressed.reused
        info["base_fingerprint"] = base_fp
        # generations are keyed by the weights that made them: a variant recompressed under the
        # same spec (a newer ctrust, another calibration precision) never reuses stale outputs;
        # a variant packed in place keeps its fake-quant key (compress.cache.cache_fingerprint)
        weights_fp = compressed.fingerprint or model_fingerprint(path)
    loaded = load_model(path, spec, cfg.device, dtype=cfg.dtype)
    return EngineBackend(loaded, model_fingerprint=weights_fp, compression=compression_label(spec, cfg.calibration),
                         max_batch=cfg.max_batch, info=info, prompt_format=cfg.prompt_format,
                         scheduler=cfg.scheduler)


def environment(backend: Backend) -> dict[str, Any]:
    env: dict[str, Any] = {"ctrust": __version__, "python": platform.python_version(), **backend.info,
                           "pid": os.getpid(), "host": socket.gethostname()}  # RunRow.shown_status
    try:  # versions only if already imported by the engine (never import torch here)
        import sys

        for mod in ("torch", "transformers"):
            if mod in sys.modules:
                env[mod] = getattr(sys.modules[mod], "__version__", "?")
    except Exception:  # pragma: no cover
        pass
    return env


@dataclass(frozen=True)
class Slot:
    """Where one cache key comes from: a prompt record, its sample index and its rendered prompt's hash."""

    record: PromptRecord
    sample: int
    rendered_hash: str


@dataclass
class GenerationPlan:
    """Every sample of every record under one backend, with what the cache already holds.

    `outputs` starts with the cached outputs and fills as `generate_cached` writes new ones, so
    callers judge a record as soon as all its samples are in it.
    """

    label: str
    seed: int
    requests: list[GenRequest]
    slots: dict[str, Slot]  # cache key -> where it comes from (the first record that needs it)
    keys_of: dict[str, list[str]]  # record key -> its samples' cache keys, in sample order
    outputs: dict[str, str]
    # cache key -> every record that needs it: two records whose rendered prompt and decoding are
    # identical (a scenario repeated under another name) share one generation, generated once
    needed_by: dict[str, list[PromptRecord]] = field(default_factory=dict)
    engine: str = ""  # store.db.engine_tag of the backend's dtype and prompt format, written with each output

    @property
    def missing(self) -> list[GenRequest]:
        return [r for r in self.requests if r.key not in self.outputs]

    def outputs_of(self, record: PromptRecord) -> list[str]:
        return [self.outputs[k] for k in self.keys_of[record.key]]

    def records_of(self, key: str) -> list[PromptRecord]:
        return self.needed_by.get(key) or [self.slots[key].record]


LEGACY_DTYPE = "float32"  # what every run before --dtype generated in on CPU: absent from keys and settings


def backend_dtype(backend: Backend) -> str:
    """The precision the backend generates in ("float32", "bfloat16", "float16"): part of every
    generation key, so outputs of different precisions are never mixed in the cache."""
    return str(backend.info.get("dtype") or LEGACY_DTYPE)


def engine_settings(backend: Backend, prompt_format: str) -> dict[str, str]:
    """The run settings that change outputs beyond model, spec and seed: dtype and prompt format,
    each absent at its default so earlier runs keep their identity (and store.db.engine_tag '')."""
    out: dict[str, str] = {}
    if backend_dtype(backend) != LEGACY_DTYPE:
        out["dtype"] = backend_dtype(backend)
    if prompt_format != MODEL:
        out["prompt_format"] = str(backend.info.get("prompt_format", prompt_format))
    return out


def plan_generations(store: Store, backend: Backend, label: str, records: Sequence[PromptRecord],
                     seed: int, prompt_format: str = MODEL) -> GenerationPlan:
    """Render each record once, key each sample by (weights, label, prompt, decoding, sample, seed), read the cache."""
    slots: dict[str, Slot] = {}
    needed_by: dict[str, list[PromptRecord]] = {}
    keys_of: dict[str, list[str]] = {}
    requests: list[GenRequest] = []
    many = getattr(backend, "render_many", None)  # optional: one call for all records (a remote worker)
    rendered_all = list(many([rec.messages for rec in records])) if many is not None else None
    for i, rec in enumerate(records):
        rendered = rendered_all[i] if rendered_all is not None else backend.render(rec.messages)
        rhash = sha256_hex(rendered)
        keys = []
        for s in range(rec.decoding.n):
            k = generation_key(backend.model_fingerprint, label, rendered, rec.decoding.to_dict(), s, seed,
                               prompt_format=prompt_format, dtype=backend_dtype(backend))
            keys.append(k)
            needed_by.setdefault(k, []).append(rec)
            if k not in slots:
                slots[k] = Slot(rec, s, rhash)
                requests.append(GenRequest(k, rendered, rec.decoding, s, seed))
        keys_of[rec.key] = keys
    return GenerationPlan(label, seed, requests, slots, keys_of, store.cached_outputs(slots), needed_by,
                          engine_tag(engine_settings(backend, prompt_format)))


def generate_cached(store: Store, backend: Backend, plan: GenerationPlan, *, cancel: Callable[[], bool],
                    on_chunks: Callable[[list[tuple[str, str]]], None] | None = None,
                    on_batch: Callable[[Sequence[str]], None] | None = None) -> Iterator[list[GenResult]]:
    """Generate the plan's missing samples batch by batch; each batch is committed to the cache
    (and added to `plan.outputs`) before it is yielded, so a killed caller loses at most one batch.
    The one place generations are written: the runner and the Inspect screen both come here."""
    missing = plan.missing
    if not missing:
        return
    for results in backend.generate(missing, on_chunks, cancel, on_batch):
        rows = []
        for res in results:
            slot = plan.slots[res.key]
            rows.append({
                "key": res.key, "model_fingerprint": backend.model_fingerprint, "compression": plan.label,
                "prompt_key": slot.record.key, "rendered_hash": slot.rendered_hash,
                "decoding": slot.record.decoding.to_dict(), "sample_index": slot.sample, "seed": plan.seed,
                "output": res.text, "n_tokens": res.n_tokens, "finish": res.finish, "seconds": res.seconds,
                "engine": plan.engine,
            })
        store.put_generations(rows)
        for res in results:
            plan.outputs[res.key] = res.text
        yield results


@dataclass(frozen=True)
class PromptOutputs:
    """One record generated (or served from the cache) under one backend."""

    outputs: list[str]
    n_tokens: int  # tokens generated now (0 when all came from the cache)
    seconds: float
    cached: bool


def generate_prompt(db_path: Path, backend: Backend, label: str, record: PromptRecord, seed: int, *,
                    cancel: Callable[[], bool], prompt_format: str = MODEL,
                    on_chunks: Callable[[list[tuple[int, str]]], None] | None = None) -> PromptOutputs:
    """Generate one record's samples through the cache (Inspect): chunks are reported by sample index."""
    started = time.time()
    with open_store(db_path) as store:
        plan = plan_generations(store, backend, label, [record], seed, prompt_format)
        cached = not plan.missing
        chunk_fn = None
        if on_chunks is not None:
            report = on_chunks

            def chunk_fn(chunks: list[tuple[str, str]]) -> None:
                report([(plan.slots[k].sample, t) for k, t in chunks])

        n_tokens = 0
        for results in generate_cached(store, backend, plan, cancel=cancel, on_chunks=chunk_fn):
            n_tokens += sum(r.n_tokens for r in results)
        return PromptOutputs(plan.outputs_of(record), n_tokens, time.time() - started, cached)


class Runner:
    """Executes a RunConfig, one compression spec after another, emitting events via `emit`."""

    def __init__(self, cfg: RunConfig, emit: EventFn, *, cancel: threading.Event | None = None,
                 backend_factory: BackendFactory = real_backend, score_every: float = 0.5) -> None:
        self.cfg = cfg
        self.emit = emit
        self.cancel = cancel or threading.Event()
        self.backend_factory = backend_factory
        self.score_every = score_every
        self._current_run: int | None = None
        self._model_name = cfg.model

    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def execute(self) -> list[int]:
        """Run every spec; returns run ids. Errors in one spec are reported and stop the sequence."""
        cfg = self.cfg
        get_profile(cfg.profile)
        dims = [get_dimension(d) for d in cfg.dimensions]
        model = resolve_model(cfg.model, cfg.models_dir)
        scorer = None
        if any(d.needs_toxicity_scorer for d in dims):
            from .scorers import resolve_toxicity_scorer

            scorer = resolve_toxicity_scorer(cfg.toxicity_scorer)
        run_ids: list[int] = []
        for spec in cfg.compressions:
            label = str(spec)
            store = open_store(cfg.db_path)
            try:
                run_ids.append(self._execute_one(store, model, spec, dims, scorer))
            except Cancelled:
                rid = self._current_run
                if rid is not None:
                    store.set_run_status(rid, "cancelled")
                self.emit(RunCancelled(rid, label))
                break
            except KeyboardInterrupt:  # not an Exception: without this the run would stay "running"
                rid = self._current_run
                if rid is not None:
                    store.set_run_status(rid, "cancelled")
                self.emit(RunCancelled(rid, label))
                raise
            except CtrustError as exc:
                rid = self._current_run
                if rid is not None:
                    store.set_run_status(rid, "failed", error=str(exc))
                self.emit(RunFailed(rid, label, str(exc)))
                raise
            except Exception as exc:
                rid = self._current_run
                if rid is not None:
                    store.set_run_status(rid, "failed", error=f"{type(exc).__name__}: {exc}")
                self.emit(RunFailed(rid, label, f"{type(exc).__name__}: {exc}"))
                raise
            finally:
                self._current_run = None
                store.close()
        return run_ids

    # ------------------------------------------------------------------------------
    def _execute_one(self, store: Store, model: ModelRef, spec: CompressionSpec, dims: Sequence[Any],
                     scorer: Any) -> int:
        cfg = self.cfg
        label = compression_label(spec, cfg.calibration)
        self._current_run = None

        def on_progress(p: CompressProgress) -> None:
            self.emit(CompressionProgress(label, p.layer, p.n_layers, p.step, p.message))

        self._model_name = model.name
        backend = self.backend_factory(model, spec, cfg, on_progress, self.cancelled)
        lock = RunLock(cfg.db_path)
        try:
            self.emit(ModelLoaded(label, dict(backend.info)))
            profile = get_profile(cfg.profile)
            records: list[PromptRecord] = []
            identity: list[PromptRecord] = []  # what the run is of (all prompts, also in adaptive rounds)
            fractions = dict(cfg.fractions) if cfg.fractions is not None else None
            for dim in dims:
                recs = dim.prompts(profile, cfg.limit)
                if fractions is not None:
                    recs = stratified_order(recs, dim.stratum)
                    identity.extend(recs)
                    recs = recs[: prefix_size(fractions.get(dim.id, 1.0), len(recs))]
                records.extend(recs)
            scorer_name = getattr(scorer, "name", None)
            settings = {
                "model_fingerprint": backend.model_fingerprint,
                "compression": label,
                "dimensions": [d.id for d in dims],
                "profile": cfg.profile,
                "seed": cfg.seed,
                "scorer": scorer_name,
                "limit": cfg.limit,
                "prompts": sha256_hex("".join(r.key for r in (identity if fractions is not None else records)))[:16],
            }
            if fractions is not None:  # absent otherwise, so earlier runs keep their identity
                settings["adaptive"] = "stratified-prefix"
            settings.update(engine_settings(backend, cfg.prompt_format))
            if cfg.calib_seeds is not None and spec.calibrated:  # absent outside a group, as above
                shared = {k: v for k, v in settings.items() if k not in ("model_fingerprint", "compression")}
                settings[GROUP_KEY] = group_entry(model=model.name, spec=str(spec), seeds=cfg.calib_seeds,
                                                  calibration=cfg.calibration.to_dict(), shared=shared)
            # one writer per run: a second process with these settings waits here, then resumes
            lock.acquire(settings, notice=lambda m: self.emit(Notice(m, "warning")), should_stop=self.cancelled)
            store.upsert_model(backend.model_fingerprint, model.name,
                               str(backend.info.get("compressed_path") or model.path), dict(model.metadata))
            run_id, resumed = store.open_run(
                settings, model_name=model.name, model_fingerprint=backend.model_fingerprint, compression=label,
                dimensions=[d.id for d in dims], profile=cfg.profile, seed=cfg.seed, scorer=scorer_name,
                env=environment(backend),
            )
            self._current_run = run_id
            store.add_run_prompts(run_id, records)
            return self._generate_and_score(store, backend, run_id, label, records, dims, scorer, resumed)
        finally:
            lock.release()
            backend.close()

    def _generate_and_score(self, store: Store, backend: Backend, run_id: int, label: str,
                            records: list[PromptRecord], dims: Sequence[Any], scorer: Any, resumed: bool) -> int:
        cfg = self.cfg
        started = time.time()
        ctxs = {rules: JudgeContext(toxicity_scorer=scorer, rules=rules) for rules in RULE_SETS}
        scorer_name = getattr(scorer, "name", None)
        by_dim = {d.id: d for d in dims}
        plan = plan_generations(store, backend, label, records, cfg.seed, cfg.prompt_format)
        outputs, per_record, req_of = plan.outputs, plan.keys_of, plan.slots
        total = len(plan.requests)
        cached = len(outputs)
        self.emit(RunStarted(run_id, self._model_name, label, tuple(by_dim), cfg.profile, total, cached, resumed))
        store.set_run_status(run_id, "running", total=total, done=cached)
        # every output is judged under every rule set; events report `cfg.rules`
        judged: dict[str, dict[str, list[tuple[PromptRecord, Verdict]]]] = {
            rules: {d: [] for d in by_dim} for rules in RULE_SETS}
        dim_totals = {d: sum(1 for r in records if r.dimension == d) for d in by_dim}
        done_records: set[str] = set()
        last_score = [0.0]
        tokens = [0]
        generated = [0]

        def who(rules: str) -> Callable[[str], str | None]:
            return lambda dim: scorer_identity(dim, rules, self._scorer_for(by_dim[dim], scorer_name))

        def finish_ready(candidates: Sequence[PromptRecord], was_cached: bool) -> None:
            ready = []
            for rec in candidates:
                if rec.key in done_records:
                    continue
                keys = per_record[rec.key]
                if all(k in outputs for k in keys):
                    outs = [outputs[k] for k in keys]
                    verdicts = {rules: by_dim[rec.dimension].judge(rec, outs, ctxs[rules]) for rules in RULE_SETS}
                    ready.append((rec, verdicts, tuple(outs)))
                    done_records.add(rec.key)
            if not ready:
                return
            for rules in RULE_SETS:
                store.put_verdicts(run_id, [(r, v[rules]) for r, v, _ in ready], who(rules), rules=rules)
            for rec, verdicts, outs in ready:
                for rules in RULE_SETS:
                    judged[rules][rec.dimension].append((rec, verdicts[rules]))
                self.emit(GenerationFinished(run_id, rec.id, rec.dimension, rec.scenario, rec.user_text, outs,
                                             verdicts[cfg.rules].to_dict(), was_cached))
            touched = {r.dimension for r, _, _ in ready}
            if time.time() - last_score[0] >= self.score_every or len(done_records) == len(records):
                last_score[0] = time.time()
                for d in sorted(touched):
                    for rules in RULE_SETS:
                        res = by_dim[d].result(judged[rules][d], with_ci=False, rules=rules,
                                               scorer=self._scorer_for(by_dim[d], scorer_name))
                        store.put_score(run_id, res, total=dim_totals[d], final=False)
                        if rules == cfg.rules:
                            self.emit(DimensionScoreUpdated(run_id, label, res, dim_totals[d], False))

        def progress() -> None:
            elapsed = time.time() - started
            done = len(outputs)
            rate = tokens[0] / elapsed if elapsed > 0 else 0.0
            per_gen = elapsed / generated[0] if generated[0] else None
            eta = per_gen * (total - done) if per_gen is not None else None
            self.emit(Progress(run_id, done, total, generated[0], cached, tokens[0], rate, elapsed, eta))

        finish_ready(records, True)
        if cached:
            self.emit(Notice(f"{cached} of {total} generations served from the cache"))
        progress()
        if plan.missing:
            streamed_before = getattr(backend, "tokens_streamed", 0)

            def on_chunks(chunks: list[tuple[str, str]]) -> None:
                streamed = getattr(backend, "tokens_streamed", 0) - streamed_before
                self.emit(TokensGenerated(run_id, tuple((req_of[k].record.id, req_of[k].sample, t) for k, t in chunks),
                                          streamed))

            def on_batch(keys: Sequence[str]) -> None:
                self.emit(PromptsStarted(run_id, tuple(
                    (req_of[k].record.id, req_of[k].sample, req_of[k].record.dimension, req_of[k].record.user_text)
                    for k in keys), tuple(req_of[k].record.decoding.n for k in keys)))

            for batch_results in generate_cached(store, backend, plan, cancel=self.cancelled, on_chunks=on_chunks,
                                                 on_batch=on_batch):
                tokens[0] += sum(r.n_tokens for r in batch_results)
                generated[0] += len(batch_results)
                store.set_run_status(run_id, "running", done=len(outputs))
                finish_ready([rec for r in batch_results for rec in plan.records_of(r.key)], False)
                progress()
        results: list[DimensionResult] = []
        for d, dim in by_dim.items():
            for rules in RULE_SETS:
                res = dim.result(judged[rules][d], with_ci=True, seed=cfg.seed, rules=rules,
                                 scorer=self._scorer_for(dim, scorer_name))
                store.put_score(run_id, res, total=dim_totals[d], final=True)
                if rules == cfg.rules:
                    self.emit(DimensionScoreUpdated(run_id, label, res, dim_totals[d], True))
                    results.append(res)
        store.set_run_status(run_id, "finished", done=len(outputs))
        self.emit(RunFinished(run_id, label, tuple(results), generated[0], cached, time.time() - started))
        return run_id

    @staticmethod
    def _scorer_for(dim: Any, scorer_name: str | None) -> str | None:
        return scorer_name if dim.needs_toxicity_scorer else None


__all__ = ["BackendFactory", "GenResult", "GenerationPlan", "PromptOutputs", "RunConfig", "Runner", "calib_seed_configs",
           "compression_label",
           "generate_cached", "generate_prompt", "plan_generations", "real_backend"]
