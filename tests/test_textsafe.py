from __future__ import annotations

from rich.console import Console
from rich.text import Text

from ctrust_tui.textsafe import safe_markup, safe_text, strip_control

NASTY = [
    "[bold red]x[/]",
    "[link=file:///etc/passwd]x[/link]",
    "\x1b]52;c;SGVsbG8=\x07",
    "\x1b[2J",
    "a\x1b[31mred\x1b[0m b",
    "\x9b31m8bit",
]


def _render(renderable) -> str:
    console = Console(width=80, color_system="truecolor", force_terminal=True, record=True)
    with console.capture() as cap:
        console.print(renderable)
    return cap.get()


def test_strip_control_removes_escape_sequences_keeps_text() -> None:
    assert strip_control("\x1b]52;c;SGVsbG8=\x07ok") == "ok"
    assert strip_control("\x1b[2Jclear") == "clear"
    assert strip_control("a\x1b[31mred\x1b[0m b") == "ared b"
    assert strip_control("tab\tnew\nline\x07bell\x00") == "tab\tnew\nlinebell"


def test_markup_is_shown_literally() -> None:
    out = _render(Text.from_markup(safe_markup("[bold red]x[/] and [link=file:///etc/passwd]y[/link]")))
    assert "[bold red]x[/]" in out
    assert "[link=file:///etc/passwd]y[/link]" in out
    assert "\x1b]8;" not in out  # no hyperlink escape emitted


def test_no_raw_escapes_reach_the_terminal() -> None:
    for s in NASTY:
        out = _render(safe_text(s))
        assert "\x1b]52" not in out and "\x1b[2J" not in out and "\x9b" not in out
        plain = Text.from_markup(safe_markup(s)).plain
        assert "\x1b" not in plain
