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


async def settle(pilot, rounds: int = 3) -> None:
    """Wait until no worker runs for `rounds` consecutive checks.

    A screen's resume handler can start a worker after `wait_for_complete` returned (its
    `call_from_thread` lands later), so one wait is not enough on a loaded CI machine.
    """
    quiet = 0
    while quiet < rounds:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.1)
        busy = any(w.state.name in ("PENDING", "RUNNING") for w in pilot.app.workers)
        quiet = 0 if busy else quiet + 1


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
