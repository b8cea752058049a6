"""A cache with a dense run and a "variant" run of a tiny random Llama, with flipped verdicts (forensics tests).

The outputs are scripted (a tiny random model's greedy text is mostly one word), so each case is
known: prompt 0 parts at token 2, prompt 1 has identical outputs, prompt 2's variant output is a
prefix of the base's. The variant's weights are the base's plus seeded noise, so the two models
give different distributions. The variant's verdicts are rewritten to differ from the base's on
every prompt: a tiny random model's outputs seldom parse, and forensics is about any flip.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes import FakeBackend
from tiny_models import save_tiny_llama

from ctrust_tui.compress.fingerprint import model_fingerprint
from ctrust_tui.compress.spec import parse_specs
from ctrust_tui.runner import RunConfig, Runner
from ctrust_tui.store import open_store
from ctrust_tui.trust.rules import RULE_SETS

SCRIPT = {  # prompt index -> (base output, variant output)
    0: ("the cat sat on the mat", "the cat ran in the park"),
    1: ("yes", "yes"),
    2: ("no wrong", "no"),
}
VARIANT = "tiny--rtn-4b-g128"


def make_tiny_models(models: Path) -> tuple[Path, Path]:
    import torch
    from transformers import LlamaForCausalLM

    base = save_tiny_llama(models / "tiny")
    var = models / VARIANT
    shutil.copytree(base, var)
    m = LlamaForCausalLM.from_pretrained(var)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    m.save_pretrained(var)
    return base, var


def build_forensics_db(root: Path) -> tuple[Path, Path, list[int]]:
    """(db, models dir, [base run id, variant run id]) with 3 flipped advglue prompts."""
    models = root / "models"
    base, var = make_tiny_models(models)
    db = root / "cache.db"

    def factory(model, spec, cfg, progress, cancel):
        dense = spec.is_dense
        order: dict[str, int] = {}

        def script(req) -> str:
            i = order.setdefault(req.prompt, len(order))
            return SCRIPT.get(i, ("yes", "yes"))[0 if dense else 1]

        b = FakeBackend(script=script, compression=str(spec), fingerprint=model_fingerprint(base if dense else var))
        if not dense:
            b.info["compressed_path"] = str(var)
        return b

    cfg = RunConfig(model="tiny", compressions=parse_specs(f"none,{VARIANT.split('--')[1]}"), dimensions=("advglue",),
                    profile="smoke", limit=3, device="cpu", db_path=db, models_dir=models)
    ids = Runner(cfg, lambda e: None, backend_factory=factory).execute()
    with open_store(db) as s:
        for rules in RULE_SETS:
            judged = s.judged(ids[0], "advglue", rules)
            flipped = [(rec, dataclasses.replace(v, verdict=v.verdict + "-flipped",
                                                 correct=None if v.correct is None else not v.correct))
                       for rec, v in judged]
            s.put_verdicts(ids[1], flipped, "test", rules=rules)
    return db, models, ids
