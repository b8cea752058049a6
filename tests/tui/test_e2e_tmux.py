"""End to end: the real app in tmux on the default model, smoke profile, every dimension, limit 1."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "smollm2-135m-instruct"
CTRUST = Path(sys.executable).with_name("ctrust")


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def _wait(session: str, needle: str, timeout: float) -> str:
    end = time.time() + timeout
    screen = ""
    while time.time() < end:
        screen = _tmux("capture-pane", "-p", "-t", session)
        if needle in screen:
            return screen
        time.sleep(0.5)
    raise AssertionError(f"{needle!r} not on screen after {timeout}s:\n{screen}")


def _palette(session: str, query: str) -> None:
    _tmux("send-keys", "-t", session, "C-p")
    time.sleep(0.6)
    _tmux("send-keys", "-t", session, "-l", query)
    time.sleep(0.6)
    _tmux("send-keys", "-t", session, "Enter")
    time.sleep(0.6)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
@pytest.mark.skipif(not (MODEL / "config.json").is_file(), reason="default model not imported")
def test_real_app_runs_a_smoke_dimension_in_tmux(tmp_path):
    session = f"ctrust-e2e-{tmp_path.name[-8:]}"
    db = tmp_path / "cache.db"
    cmd = f"cd {REPO} && {CTRUST} --db {db} --models-dir {REPO / 'models'}"
    _tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd)
    _tmux("resize-window", "-t", session, "-x", "100", "-y", "30")  # some servers ignore -x/-y
    try:
        _wait(session, "1 Browse", 20)
        _tmux("send-keys", "-t", session, "3")
        _wait(session, "Dimensions", 10)
        _palette(session, "jump to prompt limit")
        _tmux("send-keys", "-t", session, "-l", "1")
        _tmux("send-keys", "-t", session, "C-r")  # all nine dimensions (the default), one prompt each
        screen = _wait(session, "queue ✓ none", 600)  # the queue marks a finished spec with ✓
        print(screen)
        assert "Traceback" not in screen
        score_lines = [ln for ln in screen.splitlines() if "✓" in ln and re.search(r"\d+\.\d", ln)]
        assert score_lines, screen  # at least one final score with a number
    finally:
        _tmux("kill-session", "-t", session)
