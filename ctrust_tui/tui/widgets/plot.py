"""Trust vs compression in the terminal: a braille scatter per dimension and axis (pure Rich).

Each chart cell holds 2 x 4 braille dots, so a 24 x 5 cell chart is a 48 x 20 dot canvas. A point
is a `●` with its 95% interval as a vertical dotted bar; consecutive variants are joined by a line.
x grows with compression to the right (fewer bits, more sparsity), as in `ctrust export --format png`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

from ...chart import BITS, DENSE_BITS, Panel, Point
from ...textsafe import strip_control
from .render import dim_title

_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] bit of a braille cell
Y_LABEL_WIDTH = 4


def _x_range(axis: str, xs: Sequence[float]) -> tuple[float, float, bool]:
    """(left, right, log): bits run from 16 down to the fewest bits shown; sparsity from 0 up."""
    if axis == BITS:
        return DENSE_BITS, min([*xs, 4.0]) * 0.9, True
    return 0.0, max([*xs, 0.5]) * 1.05, False


def braille_chart(points: Sequence[Point], axis: str, width: int, height: int, style: str) -> list[Text]:
    """`height` lines of `Y_LABEL_WIDTH + width` cells, plus one line of x tick labels."""
    pw, ph = width * 2, height * 4
    left, right, log = _x_range(axis, [p.x for p in points])

    def px(x: float) -> int:
        a, b, v = (math.log2(left), math.log2(right), math.log2(x)) if log else (left, right, x)
        return max(0, min(pw - 1, round((v - a) / (b - a) * (pw - 1))))

    def py(score: float) -> int:  # 0 at the bottom row of dots
        return max(0, min(ph - 1, round(score / 100 * (ph - 1))))

    dots: set[tuple[int, int]] = set()
    shown = [p for p in points if p.score is not None]
    for p in shown:
        if p.ci is not None:
            for y in range(py(p.ci[0]), py(p.ci[1]) + 1, 2):  # dotted interval
                dots.add((px(p.x), y))
    for a, b in zip(shown, shown[1:]):  # Bresenham between consecutive variants
        x0, y0, x1, y1 = px(a.x), py(a.score), px(b.x), py(b.score)
        n = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(n + 1):
            dots.add((round(x0 + (x1 - x0) * i / n), round(y0 + (y1 - y0) * i / n)))
    marks = {(px(p.x) // 2, (ph - 1 - py(p.score)) // 4) for p in shown}
    lines = []
    for row in range(height):
        label = {0: "100", height - 1: "0"}.get(row, "50" if row == height // 2 else "")
        t = Text(label.rjust(Y_LABEL_WIDTH - 1) + "┤" if label else " " * (Y_LABEL_WIDTH - 1) + "│", style="dim")
        for col in range(width):
            if (col, row) in marks:
                t.append("●", style=f"bold {style}")
                continue
            code = 0
            for dy in range(4):
                for dx in range(2):
                    if (col * 2 + dx, ph - 1 - (row * 4 + dy)) in dots:
                        code |= _DOTS[dy][dx]
            t.append(chr(0x2800 + code) if code else " ", style=style)
        lines.append(t)
    ticks = [" "] * width
    for p in sorted(shown, key=lambda p: p.x):
        tick = (f"{p.x:.3g}" if axis == BITS else f"{p.x:.0%}")
        col = max(0, min(width - len(tick), px(p.x) // 2))
        if all(c == " " for c in ticks[max(0, col - 1):col + len(tick) + 1]):
            ticks[col:col + len(tick)] = list(tick)
    lines.append(Text(" " * Y_LABEL_WIDTH + "".join(ticks).rstrip(), style="dim"))
    return lines


def trust_plot(panels: Sequence[Panel], width: int, height: int = 5, style: str = "cyan") -> Text:
    """Every dimension: its title, then one chart per axis side by side."""
    if not panels:
        return Text("trust vs compression needs a compressed variant among the picked runs", style="dim")
    gap = 3
    chart_w = max(8, (width - gap * (len(panels) - 1)) // len(panels) - Y_LABEL_WIDTH)
    dims = [d for d in panels[0].series] + [d for p in panels[1:] for d in p.series if d not in panels[0].series]
    out = Text(no_wrap=True, overflow="crop")  # a wrapped chart line would break every row below it
    head = Text()
    for i, panel in enumerate(panels):
        title = "bits per weight →" if panel.axis == BITS else "sparsity →"
        head.append((" " * Y_LABEL_WIDTH + title).ljust(Y_LABEL_WIDTH + chart_w + (gap if i < len(panels) - 1 else 0)),
                    style="dim italic")
    out.append_text(head)
    for dim in dims:
        out.append(f"\n{dim_title(dim)}\n", style="bold")
        charts = [braille_chart(p.series.get(dim, ()), p.axis, chart_w, height, style) for p in panels]
        for row in range(height + 1):
            for i, chart in enumerate(charts):
                if i:
                    out.append(" " * gap)
                line = chart[row]
                out.append_text(line)
                out.append(" " * (Y_LABEL_WIDTH + chart_w - line.cell_len))
            out.append("\n")
        scored = {pt.run_id: pt for p in panels for pt in p.series.get(dim, ())}  # the numbers behind the dots
        out.append("  " + " · ".join(f"{strip_control(pt.label.split('@')[0])} "
                                     f"{'—' if pt.score is None else f'{pt.score:.1f}'}"
                                     for pt in sorted(scored.values(), key=lambda q: q.run_id)) + "\n", style="dim")
    return out
