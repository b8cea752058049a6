"""Shared base for the main screens: the nav line on top, the footer at the bottom."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.screen import Screen

from ..widgets.nav import NavBar

if TYPE_CHECKING:
    from ..app import CtrustApp


class CtrustScreen(Screen):
    NAV = ""
    # keys handled by this screen's widgets rather than its BINDINGS (the help screen lists both)
    HELP: ClassVar[str] = ""

    @property
    def capp(self) -> CtrustApp:
        return self.app  # type: ignore[return-value]

    def nav(self) -> NavBar:
        return NavBar(self.NAV, readonly=self.capp.readonly)

    def on_worker_state_changed(self, event) -> None:
        """Worker.StateChanged does not bubble: every screen turns its workers' errors into a modal."""
        from textual.worker import WorkerState

        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.capp.show_error(event.worker.error)
