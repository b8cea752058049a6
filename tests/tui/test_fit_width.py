"""`FitWidth` builds its picture for the width it is drawn at (the Compare screen's bars and plot).

The bars used to be sized from the container when a worker's result arrived, which on a slow
machine could be before the first layout (CI's snapshot caught it)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.text import Text

from ctrust_tui.tui.widgets.fit import FitWidth


def _draw(renderable, width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.file.getvalue().splitlines()


def test_built_at_each_draw_for_that_width():
    seen: list[int] = []

    def build(w: int) -> Text:
        seen.append(w)
        return Text("#" * w)

    fit = FitWidth(build)
    assert _draw(fit, 30) == ["#" * 30]
    assert _draw(fit, 72) == ["#" * 72]
    assert seen == [30, 72]  # nothing cached from the first width


def test_measures_as_filling_the_width():
    console = Console(width=40, file=io.StringIO())
    m = FitWidth(lambda w: Text("x")).__rich_measure__(console, console.options)
    assert (m.minimum, m.maximum) == (1, 40)
