"""Modal screens: error, confirmation, help, text viewer (all keyboard-driven)."""

from __future__ import annotations

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


HELP_TEXT = """\
ctrust shows what compressing an LLM (GPTQ/AWQ quantization, SparseGPT/Wanda/magnitude pruning)
does to its trustworthiness: DecodingTrust's 8 dimensions + MMLU, scores 0-100, higher is better.

Screens   1 Browse runs · 2 Compare runs · 3 Setup a run · 4 Live run · 5 Inspect one prompt
Palette   ctrl+p lists every action (jump to a screen, start/cancel, search, theme, copy…)
Quit      ctrl+q
"""

HELP_KEYS: list[tuple[str, str]] = [
    ("1 … 5", "switch screen (Browse, Compare, Setup, Run, Inspect)"),
    ("ctrl+p", "command palette"),
    ("?", "this help"),
    ("ctrl+t", "toggle dark / light theme"),
    ("ctrl+q", "quit"),
    ("Browse", "enter drill down (runs → dimensions → prompts → outputs), escape/backspace up, "
               "/ search outputs, r refresh, y copy output"),
    ("Compare", "space pick runs, b baseline = highlighted run, enter on a dimension lists flipped "
                "prompts, enter on a prompt shows every run's output side by side"),
    ("Setup", "a add the compression spec, delete remove from queue, ctrl+r start"),
    ("Run", "x cancel the run (asks first)"),
    ("Inspect", "ctrl+g generate with every chosen variant, ctrl+o pick a prompt from a dimension, "
                "y copy the focused pane's output, x stop"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for k, v in HELP_KEYS:
            table.add_row(k, v)
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
