"""Pure rendering helpers (Rich `Text` only, untrusted strings always made inert)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from ...textsafe import strip_control
from ...trust.registry import dimension_meta, verdict_polarity

BAR_WIDTH = 20
_EIGHTHS = " ▏▎▍▌▋▊▉█"
POLARITY_STYLE = {"good": "bold black on green", "bad": "bold white on red", "neutral": "reverse"}


def dim_title(dim: str) -> str:
    """The short label a score is shown under (with the caveat a reader must see, e.g. AdvGLUE's)."""
    return dimension_meta(dim).label


def inert(text: str | None, limit: int | None = None) -> Text:
    """Untrusted text as a literal `Text` (no markup, no control bytes), optionally shortened."""
    s = strip_control(text or "")
    if limit is not None:
        s = " ".join(s.split())
        if len(s) > limit:
            s = s[: max(0, limit - 1)] + "…"
    return Text(s)


def bar(value: float | None, width: int = BAR_WIDTH, style: str = "") -> Text:
    """A 0-100 horizontal bar in eighth-blocks."""
    if value is None:
        return Text("·" * width, style="dim")
    v = max(0.0, min(100.0, value)) / 100 * width
    full = int(v)
    rem = int(round((v - full) * 8))
    if rem == 8:
        full, rem = full + 1, 0
    s = "█" * full + (_EIGHTHS[rem] if rem and full < width else "")
    style = style or score_style(value)
    return Text(s.ljust(width), style=style)


def score_style(value: float | None) -> str:
    if value is None:
        return "dim"
    if value >= 75:
        return "green"
    if value >= 50:
        return "yellow"
    return "red"


def fmt_secs(s: float | None) -> str:
    if s is None:
        return "—"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def fmt_num(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def fmt_ci(ci: Sequence[float] | None) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f"[{ci[0]:.1f}, {ci[1]:.1f}]"


def fmt_rate(r: float | None) -> str:
    return "—" if r is None else f"{100 * r:.0f}%"


def verdict_badge(verdict: Mapping[str, Any] | None, dimension: str | None = None) -> Text:
    """A short coloured label for a verdict dict (`Verdict.to_dict()` shape): a leak is red, a
    refusal yellow, a graded answer green/red by `correct`, otherwise the word's registry polarity."""
    if not verdict:
        return Text(" … ", style="dim")
    word = strip_control(str(verdict.get("verdict", "?")))
    if verdict.get("leak"):
        style = POLARITY_STYLE["bad"]
    elif verdict.get("refusal"):
        style = "bold black on yellow"
    elif isinstance(verdict.get("correct"), bool):
        style = POLARITY_STYLE["good" if verdict["correct"] else "bad"]
    else:
        style = POLARITY_STYLE[verdict_polarity(word, dimension)]
    out = Text(f" {word} ", style=style)
    tox = verdict.get("toxicity", verdict.get("max_toxicity"))
    if isinstance(tox, (int, float)):
        out.append(f" tox {tox:.2f}", style="red" if tox >= 0.5 else "dim")
    if verdict.get("refusal") and word != "refusal":
        out.append(" refused", style="yellow")
    return out


def score_table(rows: Sequence[Mapping[str, Any]], *, show_final: bool = True) -> Table:
    """Per-dimension scores with a bar, interval, refusal rate and n (run screen and browse)."""
    t = Table(box=None, expand=True, padding=(0, 1), show_edge=False)
    t.add_column("dimension", no_wrap=True, max_width=24)
    t.add_column("score", justify="right", no_wrap=True)
    t.add_column("0 ─ 100", no_wrap=True, ratio=1, min_width=10)
    t.add_column("95% CI", no_wrap=True)
    t.add_column("refusal", justify="right", no_wrap=True)
    t.add_column("n", justify="right", no_wrap=True)
    for r in rows:
        n = f"{r.get('n', 0)}/{r['total']}" if r.get("total") else str(r.get("n", 0))
        name = Text(dim_title(r["dimension"]))
        if show_final and r.get("final"):
            name.append(" ✓", style="green")
        t.add_row(name, Text(fmt_num(r.get("score")), style=score_style(r.get("score"))),
                  bar(r.get("score"), 16), fmt_ci(r.get("ci95")), fmt_rate(r.get("refusal_rate")), n)
    return t
