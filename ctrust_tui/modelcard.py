"""README model card of an exported variant: what was done to the weights and what ctrust measured.

    render_card(name, meta, fmt=..., dtype=..., runs=[(RunRow, [ScoreRow, ...]), ...], cache=...) -> str

Pure Python (reads what the CLI hands it: compression.json and rows read from the cache through
the store API, read-only). Every string that came from a file or the cache is made inert first
(`md`: control and bidi characters removed, markdown/HTML specials escaped, one line), since a
model card is rendered as HTML by hubs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from .report import COLUMNS, TITLES
from .textsafe import strip_control

_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md(value: Any) -> str:
    """One inert markdown table cell / inline text."""
    text = _BIDI.sub("", strip_control("" if value is None else str(value)))
    text = " ".join(text.split())
    return _MD_SPECIAL.sub(r"\\\1", text.replace("&", "&amp;"))


def _num(x: Any, digits: int = 2) -> str:
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def _score_cell(s: Any) -> str:
    if s is None or s.score is None:
        return "—"
    cell = f"{s.score:.1f}"
    if s.ci_low is not None and s.ci_high is not None:
        cell += f" [{s.ci_low:.1f}, {s.ci_high:.1f}]"
    return cell


def _run_tables(runs: Sequence[tuple[Any, Sequence[Any]]]) -> list[str]:
    lines: list[str] = []
    if not runs:
        return ["No run of these weights is in the cache yet (`ctrust run --compression SPEC`)."]
    head = ["run", "profile", "seed", "status", "rule set", "scorer"] + [t for _, t in COLUMNS]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run, scores in runs:
        by_rules: dict[str, dict[str, Any]] = {}
        for s in scores:
            rules = getattr(s, "rules", None) or "—"
            version = getattr(s, "rules_version", None)
            key = f"{rules}@{version}" if version is not None and rules != "—" else rules
            by_rules.setdefault(key, {})[s.dimension] = s
        for rules, dims in sorted(by_rules.items()) or [("—", {})]:
            scorers = sorted({str(s.scorer) for s in dims.values() if s.scorer} | ({str(run.scorer)} if run.scorer else set()))
            cells = [f"#{run.id}", md(run.profile), str(run.seed), md(run.shown_status), md(rules),
                     md(", ".join(scorers) or "—")]
            cells += [_score_cell(dims.get(d)) for d, _ in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Scores are 0-100 with 95% bootstrap intervals; dimensions: "
                 + ", ".join(f"{TITLES[d]}" for d, _ in COLUMNS) + ". Runs are matched to these weights by the "
                 "fingerprint their generations are cached under.")
    return lines


def render_card(name: str, meta: dict[str, Any], *, fmt: str, dtype: str | None,
                runs: Sequence[tuple[Any, Sequence[Any]]], cache: str, ctrust_version: str) -> str:
    method = meta.get("method") or {}
    base = meta.get("base") or {}
    cal = meta.get("calibration") or {}
    ppl = meta.get("perplexity") or {}
    storage = meta.get("storage") or {}
    spec = md(meta.get("spec"))
    lines = [
        f"# {md(name)}",
        "",
        f"{md(meta.get('describe') or meta.get('spec'))} of **{md(base.get('name'))}**, compressed and evaluated with "
        f"ctrust {md(ctrust_version)} (DecodingTrust trust dimensions of compressed LLMs).",
        "",
        "## Files",
        "",
    ]
    if fmt == "compressed-tensors":
        lines += [
            "Packed weights in the compressed-tensors `pack-quantized` layout (`quantization_config` in config.json): "
            "the integer codes, scales and zero points ctrust evaluated, bit for bit.",
            "",
            "- transformers (CPU or GPU, needs `pip install compressed-tensors`): "
            "`AutoModelForCausalLM.from_pretrained(DIR)` (weights are decompressed while loading)",
            "- vLLM: `vllm serve DIR` (4- and 8-bit schemes; vLLM has no 2/3-bit kernels)",
        ]
    else:
        lines += [f"A plain dense checkpoint in {md(dtype)} for runtimes without compressed-tensors: "
                  "the fake-quantized weights ctrust evaluated (float32), cast to this dtype."]
    lines += [
        "",
        "## Compression",
        "",
        "| field | value |",
        "|---|---|",
        f"| spec | `{spec}` |",
        f"| method | {md(method.get('title'))} ({md(method.get('reference') or 'ctrust')}) |",
        f"| bits / group size | {md(method.get('bits'))} / {md(method.get('group_size'))} |",
        f"| symmetric / act-order | {md(method.get('sym'))} / {md(method.get('act_order'))} |",
        f"| target sparsity / N:M | {md(method.get('target_sparsity'))} / {md(method.get('n_m'))} |",
        f"| effective bits per weight | {md(meta.get('effective_bits_per_weight'))} |",
        f"| stored in ctrust as | {md(storage.get('format') or 'dense')} {md(storage.get('reason') or '')} |",
        f"| base model fingerprint | `{md(base.get('fingerprint'))}` |",
    ]
    if cal:
        lines.append(f"| calibration | {md(cal.get('source'))}, {md(cal.get('nsamples'))} x {md(cal.get('seqlen'))} "
                     f"tokens, seed {md(cal.get('seed'))}, forwards in {md(cal.get('forward_dtype'))} |")
    else:
        lines.append("| calibration | none (data-free method) |")
    if ppl:
        sl = ppl.get("slice") or {}
        lines.append(f"| WikiText-2 perplexity before → after | {_num(ppl.get('before'))} → {_num(ppl.get('after'))} "
                     f"({md(sl.get('n_windows'))} x {md(sl.get('seqlen'))} tokens) |")
    lines += ["", f"## Trust scores (cache `{md(cache)}`)", ""]
    lines += _run_tables(runs)
    lines += ["", "## Provenance", "", "compression.json of the variant (digests omitted):", "", "```json",
              json.dumps({k: v for k, v in meta.items() if k != "integrity"}, indent=1, default=str)
              .replace("```", "'''"), "```", ""]
    return "\n".join(lines)
