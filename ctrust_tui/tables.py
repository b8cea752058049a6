"""Rich tables for the terminal (score table, paired comparison). DB text is rendered inert."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rich.table import Table
from rich.text import Text

from .recommend import Recommendation, decision_cells, decision_label
from .report import COLUMNS, build_rows, fmt
from .seed_groups import SeedGroupReport, group_label
from .stats_view import delta_style, verdict_style
from .store.db import RunRow, ScoreRow
from .textsafe import safe_text
from .trust.format_failures import FormatSplit
from .trust.stats import PairedComparison


def score_table(runs: Sequence[RunRow], scores: Sequence[ScoreRow], *, show_status: bool = False,
                rules: str = "paper") -> Table:
    rows = build_rows(runs, scores)
    present = {d for r in rows for d in r.scores}
    dims = [(d, t) for d, t in COLUMNS if d in present]
    stale = any(s.stale for s in scores)
    title = f"trust scores, {rules} rules (0-100, higher is better; [95% CI] · refusal %)"
    if stale:
        title += " — some scores are from an older rules version: `ctrust rescore`"
    table = Table(title=title, title_justify="left")
    table.add_column("run", justify="right")
    table.add_column("model")
    table.add_column("compression")
    if show_status:
        table.add_column("profile")
        table.add_column("status")
    for _, title in dims:
        table.add_column(title, justify="right")
    table.add_column("Avg", justify="right")
    for row in rows:
        r = row.run
        comp = safe_text(r.compression)
        if group_label(r):
            comp.append("\n" + group_label(r), style="dim")
        cells: list[Text | str] = [f"#{r.id}", safe_text(r.model_name), comp]
        if show_status:
            cells += [safe_text(r.profile), safe_text(r.shown_status)]
        for d, _ in dims:
            s = row.scores.get(d)
            if s is None:
                cells.append("")
                continue
            t = Text(fmt(s.score), style="bold" if s.final else "dim")
            if s.ci_low is not None and s.ci_high is not None:
                t.append(f"\n[{s.ci_low:.0f}, {s.ci_high:.0f}]", style="dim")
            if s.refusal_rate:
                t.append(f"\nref {100 * s.refusal_rate:.0f}%", style="yellow")
            cells.append(t)
        cells.append(fmt(row.avg))
        table.add_row(*cells)
    return table


def _signed(x: float | None, ci: tuple[float, float] | None) -> str:
    if x is None:
        return "—"
    return f"{x:+.1f}" + (f" [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else "")


def compare_table(run_a: int, run_b: int, comps: Sequence[PairedComparison], *,
                  splits: Mapping[str, FormatSplit] | None = None, rules: str = "paper") -> Table:
    """Paired deltas and non-inferiority verdicts; with `splits`, the paper delta's changed-answer
    and format-failure parts too."""
    decided = [c.decision for c in comps if c.decision is not None]
    title = f"run #{run_b} vs #{run_a} (paired, same prompts, {rules} rules)"
    if decided:
        margins = sorted({d.margin for d in decided})
        title += (f"; non-inferior = {100 * (1 - decided[0].alpha):.0f}% interval above −margin "
                  f"(margin {', '.join(f'{m:g}' for m in margins)} points)")
    table = Table(title=title, title_justify="left")
    cols = ["dimension", f"#{run_a}", f"#{run_b}", "delta", "95% CI", "flipped", "n"]
    if decided:
        cols += ["margin", "verdict"]
    if splits:
        cols += ["changed answers (paper)", "format failures (paper)", f"fmt-fail share #{run_a}→#{run_b}"]
    for col in cols:
        table.add_column(col, justify="right" if col not in ("dimension", "verdict") else "left")
    for c in comps:
        ci = f"[{c.ci95[0]:+.1f}, {c.ci95[1]:+.1f}]" if c.ci95 else (safe_text(c.note) if c.note else "")
        delta = Text("—" if c.delta is None else f"{c.delta:+.1f}" + (" *" if c.significant else ""),
                     style=delta_style(c.delta, c.significant))
        cells: list[Text | str] = [safe_text(c.dimension), fmt(c.score_a), fmt(c.score_b), delta, ci, str(c.flipped),
                                   str(c.n_shared)]
        if decided:
            d = c.decision
            cells += [f"{d.margin:g}" if d else "", Text(d.short, style=verdict_style(d.verdict)) if d else Text("")]
        if splits:
            sp = splits.get(c.dimension)
            if sp is None:
                cells += ["", "", ""]
            else:
                share = "—" if sp.share_a is None or sp.share_b is None else \
                    f"{100 * sp.share_a:.0f}% → {100 * sp.share_b:.0f}%"
                cells += [_signed(sp.answers, sp.ci_answers), _signed(sp.formats, sp.ci_formats), share]
        table.add_row(*cells)
    return table


def recommend_table(rec: Recommendation) -> Table:
    """The decision table: every spec, most compressed first, with each dimension's verdict."""
    dims = [c.dimension for c in rec.candidates[0].comparisons] if rec.candidates else []
    table = Table(title=safe_text(f"recommendation vs base run #{rec.base_run} ({rec.rules} rules, "
                                  f"{100 * (1 - rec.alpha):.0f}% paired intervals): {rec.summary}"),
                  title_justify="left")
    for col in ("spec", "run", "bits/w", "sparse", *dims, "decision"):
        table.add_column(col, justify="left" if col in ("spec", "decision") else "right")
    for c in rec.candidates:
        by = {x.dimension: x for x in c.comparisons}
        cells: list[Text | str] = [safe_text(c.spec), f"#{c.run_id}", f"{c.bits:.2f}", f"{c.sparsity:.0%}"]
        for d in dims:
            x = by.get(d)
            dec = x.decision if x else None
            if x is None or dec is None:
                cells.append("")
                continue
            delta, verdict = decision_cells(x)
            value, _, ci = delta.partition(" ")
            t = Text(value)
            if ci:
                t.append(" " + ci, style="dim")
            t.append("\n")
            t.append(verdict, style=verdict_style(dec.verdict))
            cells.append(t)
        label = decision_label(rec, c)
        style = "bold green" if label.endswith("recommended") else "red" if label.startswith("rejected") else "dim"
        cell = safe_text(label)
        cell.stylize(style)
        cells.append(cell)
        table.add_row(*cells)
    return table


def _tok(token: object) -> str:
    """A token as a quoted literal (its spaces and newlines visible); control bytes go later, in safe_text."""
    return "∎ end" if token is None else repr(str(token))


def _pct(p: object) -> str:
    return "—" if not isinstance(p, (int, float)) else f"{100 * p:.1f}%"


def forensics_summary(fz: Mapping[str, Any] | None) -> str:
    """One line: where the outputs part, each side's token and probability, and the reading."""
    if fz is None:
        return "not computed (--forensics)"
    status = fz.get("status")
    if status != "diverged":
        return f"{status}: {fz.get('note', '')}"
    bp, vp = fz.get("base_p") or {}, fz.get("variant_p") or {}
    reading = fz.get("reading") or "no reading"
    margin = fz.get("base_margin")
    return (f"token {fz.get('position')}: {_tok(fz.get('base_token'))} {_pct(bp.get('own'))} → "
            f"{_tok(fz.get('variant_token'))} {_pct(vp.get('own'))}; {reading}"
            + (f" (base margin {100 * margin:.1f} points)" if isinstance(margin, (int, float)) else ""))


def forensics_text(fz: Mapping[str, Any] | None, run_a: int, run_b: int) -> Text:
    """The forensics of one flip as lines: the shared prefix, then each model's top-5 at the split."""
    t = Text()
    t.append_text(safe_text(forensics_summary(fz)))
    if fz is None or fz.get("status") != "diverged":
        return t
    t.append("\nafter: ", style="dim")
    t.append_text(safe_text(repr(str(fz.get("prefix") or ""))[-80:]))
    for side, rid in (("base", run_a), ("variant", run_b)):
        p = fz.get(f"{side}_p") or {}
        t.append(f"\n#{rid} {side}", style="bold")
        t.append(f"  p(own) {_pct(p.get('own'))}  p(other's) {_pct(p.get('other'))}  "
                 f"margin {_pct(fz.get(f'{side}_margin'))}", style="dim")
        if fz.get(f"{side}_reproduced") is False:
            t.append("  (top-1 is not its own token)", style="yellow")
        for e in fz.get(f"{side}_top5") or []:
            t.append(f"\n   {_pct(e.get('p')):>6}  ")
            t.append_text(safe_text(_tok(e.get("token"))))
    if fz.get("note"):
        t.append("\n")
        t.append_text(safe_text(str(fz["note"])))
    return t


def flips_table(run_a: int, run_b: int, rows: Sequence[Mapping[str, Any]]) -> Table:
    """Flipped prompts of a comparison with their forensics summary (untrusted text shown literally)."""
    table = Table(title=f"flipped prompts, #{run_a} → #{run_b} (forensics: first differing output token)",
                  title_justify="left")
    for col in ("dimension", "prompt", f"#{run_a}", f"#{run_b}", "forensics"):
        table.add_column(col)
    for r in rows:
        table.add_row(safe_text(str(r["dimension"])), safe_text(str(r["record_id"])),
                      safe_text(str(r["base_verdict"])), safe_text(str(r["variant_verdict"])),
                      safe_text(forensics_summary(r.get("forensics"))))
    return table


def seed_group_table(report: SeedGroupReport, rules: str = "paper") -> Table:
    """One calibration-seed group: per dimension the pooled score, its two-level 95% interval, each
    seed's score, and the share of the interval's variance that is between seeds."""
    runs = ", ".join(f"#{i}" for i in report.run_ids)
    title = (f"{report.compression}, calibration seeds {', '.join(map(str, report.seeds))} (runs {runs}; {rules} "
             "rules): pooled score, two-level bootstrap 95% CI (prompts, then seeds), seed share of its variance")
    if report.missing:
        title += f" — seeds {', '.join(map(str, report.missing))} have no finished run"
    table = Table(title=safe_text(title), title_justify="left")
    for col in ("dimension", "pooled", "95% CI", *(f"seed {s}" for s in report.seeds), "seed sd", "seed share",
                "n"):
        table.add_column(col, justify="left" if col == "dimension" else "right")
    for d in report.dimensions:
        ci = f"[{d.ci95[0]:.1f}, {d.ci95[1]:.1f}]" if d.ci95 else safe_text(d.note)
        share = "—" if d.seed_share is None else f"{100 * d.seed_share:.0f}%"
        table.add_row(safe_text(d.dimension), fmt(d.score), ci, *(fmt(v) for v in d.per_seed), fmt(d.seed_sd),
                      share, str(d.n_prompts))
    return table
