"""Flip forensics: where a base and a variant output part, and what each model believed there.

For a prompt whose verdict flipped between a base run and a variant run, both outputs (the first
sample) are tokenized with the base's tokenizer (a variant shares its base's tokenizer), the first
differing token is found, and each model gets one teacher-forced forward over prompt + common
prefix: its top-5 next tokens and the probability it gives to both outputs' tokens there. From
these, `reading` says "near-tie" when the base preferred its own token by less than NEAR_TIE
(probability points) over the variant's, else "change of belief" (docs/decisions.md).

Results are cached in the store's `flip_forensics` table keyed by the two generation keys, so a
second request is served without loading a model. This module imports no torch at import time:
the engine is imported only when something has to be computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .errors import CtrustError
from .store import Store, open_store
from .store.db import GenerationRow, RunRow
from .trust.prompt_format import MODEL
from .trust.stats import PairedComparison
from .trust.types import PromptRecord, sha256_hex

METHOD = 1  # bump when the computation changes: cached rows of another method are recomputed
NEAR_TIE = 0.10  # base margin (p(own token) - p(variant's token)) below which a flip is a near-tie
LoadFn = Callable[[Path, Any, str], Any]  # (folder, CompressionSpec, device) -> engine.loader.LoadedModel


@dataclass(frozen=True)
class Flip:
    """One prompt whose verdict differs between the base run and the variant run."""

    dimension: str
    record: PromptRecord
    prompt_key: str
    base_verdict: str | None
    variant_verdict: str | None


def list_flips(store: Store, base: int, variant: int, comps: Sequence[PairedComparison], *, rules: str,
               limit: int | None = None) -> list[Flip]:
    """The flipped prompts of each comparison (at most `limit` per dimension), in record-id order."""
    out: list[Flip] = []
    for c in comps:
        ids = list(c.flipped_ids)[: limit if limit is not None else None]
        if not ids:
            continue
        a = {it.record.id: it for it in store.run_items(base, c.dimension, with_outputs=False, rules=rules)}
        b = {it.record.id: it for it in store.run_items(variant, c.dimension, with_outputs=False, rules=rules)}
        for rid in ids:
            ia, ib = a.get(rid), b.get(rid)
            if ia is None or ib is None:
                continue
            out.append(Flip(c.dimension, ia.record, ia.prompt_key, ia.verdict.verdict if ia.verdict else None,
                            ib.verdict.verdict if ib.verdict else None))
    return out


def _unavailable(note: str) -> dict[str, Any]:
    return {"method": METHOD, "status": "unavailable", "note": note}


def _pair(store: Store, base: RunRow, variant: RunRow, flip: Flip) -> tuple[GenerationRow, GenerationRow] | dict:
    gb = store.run_generations(base.id, flip.prompt_key)
    gv = store.run_generations(variant.id, flip.prompt_key)
    if not gb or not gv:
        which = " and ".join(f"#{r.id}" for r, g in ((base, gb), (variant, gv)) if not g)
        return _unavailable(f"no cached output of run {which} for this prompt")
    return gb[0], gv[0]


def _runs(store: Store, base: int, variant: int) -> tuple[RunRow, RunRow]:
    a, b = store.run(base), store.run(variant)
    for rid, r in ((base, a), (variant, b)):
        if r is None:
            raise CtrustError(f"no run #{rid} in {store.path}; see `ctrust runs`")
    assert a is not None and b is not None
    return a, b


def cached_forensics(store: Store, base: int, variant: int, flips: Sequence[Flip]) -> dict[str, dict[str, Any] | None]:
    """Per flipped prompt key: its cached forensics, an "unavailable" note, or None (not computed yet)."""
    a, b = _runs(store, base, variant)
    out: dict[str, dict[str, Any] | None] = {}
    pairs: dict[str, tuple[str, str]] = {}
    for f in flips:
        got = _pair(store, a, b, f)
        if isinstance(got, dict):
            out[f.prompt_key] = got
        else:
            pairs[f.prompt_key] = (got[0].key, got[1].key)
    hits = store.forensics(pairs.values(), METHOD)
    for pk, pair in pairs.items():
        out[pk] = hits.get(pair)
    return out


def model_folder(store: Store, run: RunRow, models_dir: Path) -> Path:
    """The folder holding the weights that made `run`'s outputs: the path the run recorded, else a
    folder under `models_dir` with the run's fingerprint; one clear error when there is none."""
    from .compress.cache import cache_fingerprint, list_compressed, read_metadata
    from .errors import ModelNotFound

    def matches(folder: Path) -> bool:
        try:
            return folder.is_dir() and cache_fingerprint(folder, read_metadata(folder)) == fingerprint
        except (ModelNotFound, OSError):
            return False

    fingerprint = store.run_fingerprint(run.id) or ""
    recorded = store.model_path(fingerprint)
    candidates = [Path(recorded)] if recorded else []
    candidates.append(Path(models_dir) / run.model_name.split("--")[0])
    candidates += [f for f, _ in list_compressed(models_dir)]  # variants (compression.json) first
    if Path(models_dir).is_dir():  # then any folder: the fingerprint reads at most 2 MiB per weight file
        candidates += sorted(p for p in Path(models_dir).iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in candidates:
        if matches(folder):
            return folder
    where = f" (it was loaded from {recorded})" if recorded else ""
    raise CtrustError(
        f"the weights of run #{run.id} ({run.model_name}, compression {run.compression}, fingerprint "
        f"{fingerprint[:12]}) are not in {models_dir}{where}: the folder was removed or recompressed; "
        f"recreate it with `ctrust run --model {run.model_name.split('--')[0]} --compression "
        f"{run.compression.split('@')[0]}` or pass --models-dir")


@dataclass
class _Job:
    flip: Flip
    gens: tuple[GenerationRow, GenerationRow]
    context: list[int] | None = None  # prompt + common output prefix (token ids)
    tokens: tuple[int | None, int | None] = (None, None)  # base's and variant's token at the divergence
    result: dict[str, Any] | None = None


def _end_token(loaded: Any) -> int | None:
    """The id standing for "the output ended here": the tokenizer's EOS (the generator also stops on
    the generation config's ids; for chat models both name the turn end), else the config's first."""
    tok_eos = getattr(loaded.tokenizer, "eos_token_id", None)
    if isinstance(tok_eos, int):
        return tok_eos
    eos = getattr(getattr(loaded.model, "generation_config", None), "eos_token_id", None)
    if isinstance(eos, (list, tuple)):
        eos = eos[0] if eos else None
    return eos if isinstance(eos, int) else None


def _sampled(decoding: Mapping[str, Any]) -> bool:
    return float(decoding.get("temperature", 0.0) or 0.0) > 0.0


def _prepare(job: _Job, loaded: Any, render: Callable[[Any], str]) -> None:
    """Render and tokenize on the base model: the divergence index and the forward's context."""
    from .engine.forensics import encode, first_divergence, token_text

    gb, gv = job.gens
    rendered = render(job.flip.record.messages)
    if sha256_hex(rendered) != gb.rendered_hash or gb.rendered_hash != gv.rendered_hash:
        job.result = _unavailable("the prompt no longer renders to the text both runs were given (tokenizer, "
                                  "template or prompt format changed): forensics would explain another prompt")
        return
    tok = loaded.tokenizer
    ib, iv = encode(tok, gb.output), encode(tok, gv.output)
    pos = first_divergence(ib, iv)
    sampled = _sampled(gb.decoding) or _sampled(gv.decoding)
    head = {"method": METHOD, "sample": 0, "samples": int(gb.decoding.get("n", 1) or 1), "sampled": sampled}
    if pos is None:
        job.result = {**head, "status": "identical", "note": (
            "both outputs are the same text: the flip comes from judging "
            + ("the other samples (this dimension draws several), " if head["samples"] > 1 else "")
            + "(a scorer or rule change), not from generation")}
        return
    end = _end_token(loaded)
    job.tokens = (ib[pos] if pos < len(ib) else end, iv[pos] if pos < len(iv) else end)
    job.context = encode(tok, rendered) + ib[:pos]
    job.result = {**head, "status": "diverged", "position": pos,
                  "prefix": tok.decode(ib[:pos], skip_special_tokens=True)[-120:],
                  "base_ended": pos >= len(ib), "variant_ended": pos >= len(iv),
                  "base_token": None if job.tokens[0] is None else token_text(tok, job.tokens[0]),
                  "variant_token": None if job.tokens[1] is None else token_text(tok, job.tokens[1])}
    if sampled:
        job.result["note"] = ("sampled outputs (temperature > 0): the first sample is examined; a divergence may "
                              "be the sampler's draw, not either model's preference")


def _forward(job: _Job, loaded: Any, side: str) -> None:
    from .engine.forensics import next_tokens

    assert job.result is not None and job.context is not None
    probes = [t for t in job.tokens if t is not None]
    got = next_tokens(loaded.model, loaded.tokenizer, loaded.device, job.context, probes)
    job.result[f"{side}_top5"] = [{"token": t.text, "p": t.p} for t in got.top]
    own, other = job.tokens if side == "base" else job.tokens[::-1]
    job.result[f"{side}_p"] = {"own": None if own is None else got.probes.get(own),
                               "other": None if other is None else got.probes.get(other)}
    job.result[f"{side}_reproduced"] = own is not None and bool(got.top) and got.top[0].id == own


def _finish(job: _Job) -> None:
    r = job.result
    assert r is not None
    margins = {}
    for side in ("base", "variant"):
        p = r[f"{side}_p"]
        margins[side] = None if p["own"] is None or p["other"] is None else p["own"] - p["other"]
    r["base_margin"], r["variant_margin"] = margins["base"], margins["variant"]
    r["reading"] = None if margins["base"] is None else (
        "near-tie" if margins["base"] < NEAR_TIE else "change of belief")
    if not (r["base_reproduced"] and r["variant_reproduced"]):
        r["note"] = ((r.get("note", "") + "; ") if r.get("note") else "") + (
            "a model's top token here is not the token it generated (re-tokenized text, another device or "
            "dtype, or sampling): read the probabilities, not the ranks")


def compute_forensics(db_path: Path, models_dir: Path, base: int, variant: int, flips: Sequence[Flip], *,
                      device: str = "auto", persist: bool = True, load: LoadFn | None = None,
                      on_progress: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Forensics of every flip, computing the missing ones: each model is loaded once for the whole
    batch (base first, then variant) and unloaded before the next. `persist=False` computes without
    writing the cache (a read-only browse session)."""
    say = on_progress or (lambda _m: None)
    with open_store(db_path, readonly=not persist) as store:
        a, b = _runs(store, base, variant)
        out: dict[str, dict[str, Any]] = {}
        cached = cached_forensics(store, base, variant, flips)
        jobs: list[_Job] = []
        for f in flips:
            got = cached.get(f.prompt_key)
            if got is not None:
                out[f.prompt_key] = got
                continue
            pair = _pair(store, a, b, f)
            assert not isinstance(pair, dict)  # cached_forensics already reported missing outputs
            jobs.append(_Job(f, pair))
        if not jobs:
            return out
        folders = (model_folder(store, a, models_dir), model_folder(store, b, models_dir))
        if load is None:
            from .engine.loader import load_model as load
        from .compress.spec import parse_spec
        from .engine.backend import EngineBackend

        vocab = 0
        for side, run, folder in (("base", a, folders[0]), ("variant", b, folders[1])):
            say(f"loading {run.compression} (#{run.id}) from {folder.name}")
            loaded = load(folder, parse_spec(run.compression.split("@")[0]), device)
            try:
                if side == "base":
                    backend = EngineBackend(loaded, model_fingerprint=store.run_fingerprint(run.id) or "",
                                            compression=run.compression,
                                            prompt_format=str(run.settings.get("prompt_format", MODEL)))
                    vocab = len(loaded.tokenizer)
                    for job in jobs:
                        _prepare(job, loaded, backend.render)
                elif len(loaded.tokenizer) != vocab:
                    raise CtrustError(f"runs #{a.id} and #{b.id} use different tokenizers ({vocab} vs "
                                      f"{len(loaded.tokenizer)} tokens): their outputs cannot be compared token "
                                      "by token")
                todo = [j for j in jobs if j.context is not None]
                for i, job in enumerate(todo):
                    say(f"{side} forward {i + 1}/{len(todo)}")
                    _forward(job, loaded, side)
                device_info = {"device": str(loaded.device), "dtype": str(loaded.dtype).replace("torch.", "")}
                for job in todo:
                    assert job.result is not None
                    job.result[f"{side}_device"] = device_info
            finally:  # one model in memory at a time
                import gc

                loaded.model = None
                gc.collect()
        rows = []
        for job in jobs:
            assert job.result is not None
            if job.context is not None:
                _finish(job)
            out[job.flip.prompt_key] = job.result
            if job.result["status"] != "unavailable":  # a render mismatch may be fixed later: not cached
                rows.append((job.gens[0].key, job.gens[1].key, METHOD, job.result))
        if persist:
            store.put_forensics(rows)
    return out


__all__ = ["METHOD", "NEAR_TIE", "Flip", "cached_forensics", "compute_forensics", "list_flips", "model_folder"]
