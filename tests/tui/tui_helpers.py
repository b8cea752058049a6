"""Small waiting / reading helpers for Pilot tests."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

from rich.console import Console


async def wait_for(pilot, cond: Callable[[], bool], timeout: float = 30.0, step: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await pilot.pause(step)


def rendered(widget) -> str:
    """Plain text of what a Static-like widget shows (Text, Content or any Rich renderable)."""
    content = widget.render()
    if hasattr(content, "plain"):
        return content.plain
    renderable = getattr(content, "_renderable", content)
    if hasattr(renderable, "plain"):
        return renderable.plain
    console = Console(width=120, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()
