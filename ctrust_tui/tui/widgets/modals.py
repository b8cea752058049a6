"""Modal screens: error, confirmation, help, text viewer (all keyboard-driven)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from ...textsafe import strip_control


class ErrorModal(ModalScreen[None]):
    """Shows a user-facing error (never a traceback). Enter / Escape closes."""

    BINDINGS = [Binding("escape,enter,q", "dismiss", "Close", id="error.close")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__(classes="modal")
        self._title = title
        self._message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="error"):
            yield Label(Text(self._title, style="bold"), id="dialog-title")
            yield Static(Text(strip_control(self._message)), id="dialog-body")
            yield Button("OK", id="ok", variant="error")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss()

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss()


class ConfirmModal(ModalScreen[bool]):
    """Yes/no question. `y` / Enter on Yes confirms, `n` / Escape declines."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__(classes="modal")
        self._question = question
        self._yes, self._no = yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self._question), id="dialog-body")
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self._yes} (y)", id="yes", variant="error")
                yield Button(f"{self._no} (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


HELP_TEXT = (
    "ctrust shows what compressing an LLM (GPTQ/AWQ quantization, SparseGPT/Wanda/magnitude pruning) does "
    "to its trustworthiness: DecodingTrust's 8 dimensions + MMLU, scores 0-100, higher is better. "
    "ctrl+p lists every action (jump to a screen, start/cancel, search, theme, copy…).\n"
)


def binding_rows(app: Any, bindings: Sequence[Binding | tuple[str, ...]]) -> list[tuple[str, str]]:
    """(keys, description) per action, keys of one action joined: the help is generated from the
    very bindings the app runs, so it cannot drift from them (it once said `x` stops Inspect)."""
    rows: dict[tuple[str, str], list[str]] = {}
    for b in Binding.make_bindings(bindings):
        if b.system or not b.description:
            continue
        rows.setdefault((b.action, b.description), []).append(app.get_key_display(b))
    return [(" / ".join(dict.fromkeys(keys)), desc) for (_, desc), keys in rows.items()]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        from .nav import SCREENS

        table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        goto = [b for b in self.app.BINDINGS if isinstance(b, Binding) and b.action.startswith("goto(")]
        for keys, desc in binding_rows(self.app, [b for b in self.app.BINDINGS if b not in goto]):
            table.add_row(keys, desc)
        shown = [(b.key, b.description) for b in goto if self.app.is_screen_installed(b.action[6:-2])]
        table.add_row(" / ".join(k for k, _ in shown), f"switch screen ({', '.join(d for _, d in shown)})")
        for key, name, title in SCREENS:
            if not self.app.is_screen_installed(name):
                continue
            screen = self.app.get_screen(name)
            table.add_row("", "")
            table.add_row(Text(f"{key} {title}", style="bold"), Text(getattr(screen, "HELP", ""), style="dim"))
            for keys, desc in binding_rows(self.app, type(screen).BINDINGS):
                table.add_row(keys, desc)
        with VerticalScroll(id="help-dialog"):
            yield Label(Text("ctrust — help", style="bold"))
            yield Static(Text(HELP_TEXT))
            yield Static(table)
            yield Static(Text("escape closes", style="dim"))

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss()


class TextModal(ModalScreen[None]):
    """Read-only viewer for a long piece of (untrusted) text; `y` copies it."""

    BINDINGS = [
        Binding("escape,q", "dismiss", "Close", id="text.close"),
        Binding("y", "copy", "Copy", id="text.copy"),
    ]

    def __init__(self, title: str, body: Text, copy_text: str = "") -> None:
        super().__init__(classes="modal")
        self._title = title
        self._body = body
        self._copy = copy_text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="text-dialog"):
            yield Label(Text(strip_control(self._title), style="bold"))
            yield Static(self._body, markup=False)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(strip_control(self._copy))
        self.app.notify("output copied to the clipboard (OSC 52)", timeout=2)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss()
