"""A Rich renderable laid out for the width it is drawn at.

The Compare screen's bars and plot used to be built for the container's width when a worker's
result arrived; on a slow machine that could be before the first layout (width 0, so the
narrowest bars) with no resize afterwards to fix it, and CI's snapshot caught the difference.
Building at draw time (`options.max_width`) makes the picture a function of data and size only.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement


class FitWidth:
    """`build(width)` is called each time the renderable is drawn, with the width it has."""

    def __init__(self, build: Callable[[int], RenderableType]) -> None:
        self.build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.build(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, options.max_width)
