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


BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def test_strip_control_removes_bidi_controls() -> None:
    # "Trojan Source": an RLO makes `admin\u202e txt.exe` read differently from what it is
    assert strip_control(f"a{BIDI}b") == "ab"
    assert strip_control("invoice\u202egpj.exe") == "invoicegpj.exe"
    assert "\u202e" not in Text.from_markup(safe_markup("x\u202ey")).plain


def test_one_line_md_and_csv_cells() -> None:
    from ctrust_tui.textsafe import clean_tree, csv_cell, md_cell, one_line

    assert one_line("a\nb\r\n\tc\u2028d\x1b[2J") == "a b  c d"
    assert md_cell("x|y\\|z\n<b>") == "x\\|y\\\\\\|z &lt;b>"
    for bad in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\x1b[2J=1"):
        assert csv_cell(bad).startswith("'"), bad
    assert csv_cell("smollm2") == "smollm2" and csv_cell("wanda-2:4") == "wanda-2:4"
    assert clean_tree({"k\x1b[1m": ["v\u202e", 1, None]}) == {"k": ["v", 1, None]}
