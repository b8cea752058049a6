"""Command palette provider: every main action of the app, searchable with ctrl+p."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from .app import CtrustApp


class CtrustCommands(Provider):
    def _commands(self) -> Iterator[tuple[str, str, Callable[[], object]]]:
        app: CtrustApp = self.app  # type: ignore[assignment]
        for key, name, title in app.available_screens():
            yield (f"Go to {title}", f"switch to the {title} screen (key {key})", partial(app.run_action, f"goto('{name}')"))
        yield ("Help: key bindings", "show every key binding (?)", partial(app.run_action, "help"))
        yield ("Toggle dark / light theme", "ctrl+t", partial(app.run_action, "toggle_theme"))
        yield ("Refresh from cache.db", "re-read runs and scores (safe while another process writes)",
               partial(app.run_action, "refresh"))
        yield ("Search outputs", "full-text search across every cached output", partial(app.run_action, "search"))
        yield ("Copy output to clipboard", "copies the output in view (OSC 52 works over SSH)",
               partial(app.run_action, "copy_output"))
        if not app.readonly:
            yield ("Start run", "start the queued compressions on the Setup screen (ctrl+r)",
                   partial(app.run_action, "start_run"))
            yield ("Cancel run", "cancel the live run, after confirmation (x on the Run screen)",
                   partial(app.run_action, "cancel_run"))
            yield ("Inspect: generate", "generate the prompt with every chosen variant (ctrl+g)",
                   partial(app.run_action, "inspect_generate"))
            for field, title in (("model", "model"), ("method", "compression method"), ("specs", "typed specs"),
                                 ("dims", "dimensions"), ("profile", "profile"), ("limit", "prompt limit")):
                yield (f"Setup: jump to {title}", f"focus the {title} field on the Setup screen",
                       partial(app.run_action, f"setup_focus('{field}')"))

    async def discover(self) -> Hits:
        for name, help_text, cb in self._commands():
            yield DiscoveryHit(name, cb, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, cb in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), cb, help=help_text)
