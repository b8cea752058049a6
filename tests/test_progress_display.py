"""`ctrust run`'s headless progress: live throughput while a continuous group's rows are still decoding."""

from __future__ import annotations

from rich.console import Console

from ctrust_tui.events import Progress, RunStarted, TokensGenerated
from ctrust_tui.progress import RunDisplay


def _display(tty: bool) -> tuple[RunDisplay, Console]:
    console = Console(record=True, force_terminal=tty, width=160)
    display = RunDisplay(console)
    display.tty = tty
    return display, console


def test_plain_mode_reports_decoded_tokens_before_any_generation_finishes() -> None:
    """The runner's rate counts finished generations only (0 tok/s for the 20 minutes a group of 128 sampled
    150-token requests decoded); the line uses every streamed token instead."""
    display, console = _display(False)
    with display:
        display.handle(RunStarted(6, "m", "gptq-3b-g64", ("toxicity",), "quick", 470, 340, True))
        display.handle(Progress(6, 340, 470, 0, 340, 0, 0.0, 100.0, None))
        display.handle(TokensGenerated(6, (("r", 0, "x"),), 1500))
        display._last_plain = 0.0  # as if the last line were LIVE_LINE_S ago
        display.handle(TokensGenerated(6, (("r", 0, "y"),), 2000))
    lines = console.export_text().splitlines()
    live = [ln for ln in lines if "rows still decoding" in ln]
    assert len(live) == 1, lines
    rate = int(live[0].split("· ")[1].split(" tok/s")[0])
    assert 17 <= rate <= 20, live  # 2,000 tokens over ~100 s
    assert live[0].startswith("run #6: 340/470 generations")


def _plain_lines(*events: object) -> list[str]:
    display, console = _display(False)
    with display:
        for ev in events:
            display.handle(ev)
    return console.export_text().splitlines()


def test_plain_mode_is_quiet_between_live_lines_and_without_streaming() -> None:
    lines = _plain_lines(
        RunStarted(1, "m", "none", ("ethics",), "smoke", 10, 0, False),
        TokensGenerated(1, (), 5),  # before the first Progress: nothing to report against
        Progress(1, 0, 10, 0, 0, 0, 0.0, 1.0, None),
        TokensGenerated(1, (), 50),  # within LIVE_LINE_S of the progress line
        Progress(1, 10, 10, 10, 0, 40, 40.0, 2.0, 0.0))
    assert not any("rows still decoding" in ln for ln in lines), lines
    assert lines[-1].startswith("run #1: 10/10 generations · 25 tok/s")  # 50 streamed tokens over 2 s


def test_a_new_run_starts_its_throughput_from_zero() -> None:
    lines = _plain_lines(
        RunStarted(1, "m", "none", ("ethics",), "smoke", 10, 0, False),
        Progress(1, 0, 10, 0, 0, 0, 0.0, 1.0, None),
        TokensGenerated(1, (), 5000),
        RunStarted(2, "m", "wanda-0.5", ("ethics",), "smoke", 10, 0, False),
        Progress(2, 10, 10, 10, 0, 30, 3.0, 10.0, 0.0))
    assert lines[-1].startswith("run #2: 10/10 generations · 3 tok/s")


def test_tty_bar_shows_the_live_rate() -> None:
    display, _ = _display(True)
    with display:
        display.handle(RunStarted(6, "m", "none", ("toxicity",), "quick", 470, 340, True))
        display.handle(Progress(6, 340, 470, 0, 340, 0, 0.0, 100.0, None))
        display.handle(TokensGenerated(6, (), 1000))
        assert display.progress is not None
        info = display.progress.tasks[0].fields["info"]
    assert info.startswith("10 tok/s") or info.startswith("9 tok/s"), info
