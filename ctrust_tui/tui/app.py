"""The ctrust Textual app: browse, compare, set up and watch runs, inspect one prompt live.

Importing this module must not import torch or transformers (`ctrust browse` starts fast and
works over SSH): every engine import happens inside thread workers of the live screens.

Each main screen is an app mode (Textual MODES, added at mount because `ctrust browse` has only
Browse and Compare): switching keeps each screen's state and its own stack of dialogs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.worker import Worker, WorkerState

from ..errors import Cancelled, CtrustError, StoreError
from ..store import Store, open_store
from ..trust.rules import DEFAULT_RULES, RULE_SETS
from .commands import CtrustCommands
from .widgets.modals import ErrorModal, HelpScreen
from .widgets.nav import READONLY_SCREENS, SCREENS

DARK, LIGHT = "textual-dark", "textual-light"


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(title, message) for a modal: user errors verbatim, everything else one line, no traceback."""
    if isinstance(exc, StoreError):
        return "Cache unusable", str(exc)
    if isinstance(exc, CtrustError):
        return "Error", str(exc)
    text = str(exc)
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return "Out of memory", (f"{text or type(exc).__name__}\n\nTry a smaller model, the cpu device, "
                                 "a smaller profile, or fewer variants at once.")
    return f"Unexpected error ({type(exc).__name__})", text or type(exc).__name__


class CtrustApp(App[None]):
    TITLE = "ctrust"
    SUB_TITLE = "what compression does to trust"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {CtrustCommands}
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+t", "toggle_theme", "Theme", id="app.theme", show=False),
        Binding("R", "toggle_rules", "Rules", id="app.rules"),
        *[Binding(key, f"goto('{name}')", title, id=f"app.goto.{name}", show=False) for key, name, title in SCREENS],
    ]

    # the rule set Browse and Compare show (both are stored for every output); `R` switches it
    rules: reactive[str] = reactive(DEFAULT_RULES)

    def __init__(self, db_path: Path, models_dir: Path, readonly: bool = False, *,
                 backend_factory: Callable[..., Any] | None = None, batch_rate: float = 15.0) -> None:
        super().__init__()
        self.db_path = Path(db_path)
        self.models_dir = Path(models_dir)
        self.readonly = readonly
        self.backend_factory = backend_factory  # None = the real engine, imported inside workers
        self.batch_rate = batch_rate
        self.theme = DARK

    # -- screens ------------------------------------------------------------------------
    def available_screens(self) -> list[tuple[str, str, str]]:
        return [s for s in SCREENS if not self.readonly or s[1] in READONLY_SCREENS]

    def on_mount(self) -> None:
        from .screens.browse import BrowseScreen
        from .screens.compare import CompareScreen

        if not self.readonly:
            try:  # create / migrate the cache once so every screen can read it
                open_store(self.db_path).close()
            except CtrustError as exc:
                self.show_error(exc)
        else:
            try:  # a cache in a read-only place opens as an immutable snapshot: say so once
                with self.read_store() as store:
                    if store.snapshot_note:
                        self.notify(store.snapshot_note, severity="warning", timeout=10, markup=False)
            except CtrustError as exc:
                self.show_error(exc)
        screens = {"browse": BrowseScreen(), "compare": CompareScreen()}
        if not self.readonly:
            from .screens.inspect import InspectScreen
            from .screens.run import RunScreen
            from .screens.setup import SetupScreen

            screens |= {"setup": SetupScreen(), "run": RunScreen(), "inspect": InspectScreen()}
        for name, screen in screens.items():
            self.install_screen(screen, name)  # get_screen(name) reaches a mode's screen from anywhere
            self.add_mode(name, name)
        self.switch_mode("browse")

    async def action_goto(self, name: str) -> None:
        if self.readonly and name not in READONLY_SCREENS:
            self.notify(f"{name} is not available in read-only browse mode; run `ctrust` for the full app",
                        severity="warning")
            return
        if isinstance(self.screen, ModalScreen) or self.current_mode == name:
            return
        await self.switch_mode(name)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT if self.theme == DARK else DARK

    def watch_rules(self, rules: str) -> None:
        self.sub_title = f"{rules} rules"

    async def action_toggle_rules(self) -> None:
        """paper <-> robust: the screens that show scores re-read them under the other rule set."""
        self.rules = RULE_SETS[(RULE_SETS.index(self.rules) + 1) % len(RULE_SETS)]
        hint = ("the paper's own scoring code" if self.rules == "paper"
                else "ctrust's tolerant parser (reads answers the paper's parser misses)")
        self.notify(f"scores under the {self.rules} rules: {hint}", timeout=4)
        if hasattr(self.screen, "action_refresh"):
            await self.screen.run_action("refresh")

    # -- actions forwarded to the screen that owns them (palette entries) ----------------
    async def _on_screen(self, name: str, action: str) -> None:
        await self.action_goto(name)
        if self.screen is self.get_screen(name):
            await self.screen.run_action(action)

    async def action_refresh(self) -> None:
        if hasattr(self.screen, "action_refresh"):
            await self.screen.run_action("refresh")
        else:
            await self._on_screen("browse", "refresh")

    async def action_search(self) -> None:
        await self._on_screen("browse", "search")

    async def action_copy_output(self) -> None:
        if hasattr(self.screen, "action_copy"):
            await self.screen.run_action("copy")
        else:
            self.notify("no output in view to copy", severity="warning")

    async def action_start_run(self) -> None:
        await self._on_screen("setup", "start")

    async def action_cancel_run(self) -> None:
        await self._on_screen("run", "cancel")

    async def action_inspect_generate(self) -> None:
        await self._on_screen("inspect", "generate")

    async def action_setup_focus(self, field: str) -> None:
        await self._on_screen("setup", f"focus_field('{field}')")

    # -- store and errors -----------------------------------------------------------------
    @contextmanager
    def read_store(self) -> Iterator[Store]:
        """A short-lived read-only handle: no long read transactions while a run writes (WAL)."""
        store = open_store(self.db_path, readonly=True)
        try:
            yield store
        finally:
            store.close()

    def show_error(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            self.notify("cancelled", severity="warning")
            return
        title, message = describe_error(exc)
        self.push_screen(ErrorModal(title, message))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.show_error(event.worker.error)


def run_app(db_path: Path, models_dir: Path, readonly: bool = False) -> None:
    CtrustApp(db_path, models_dir, readonly).run()
