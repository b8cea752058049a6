"""Item 3 of the hardening issue: exports and terminal output are inert.

Every string that came from a model folder, a file or the cache (model names, spec labels,
profiles, record ids, scenario keys, errors) is stripped of terminal escapes, C0/C1 controls and
bidi overrides; CSV cells cannot start a formula; markdown cells cannot break the table.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from ctrust_tui.cli import main
from ctrust_tui.events import CompressionProgress, Notice, RunFailed, RunStarted
from ctrust_tui.progress import RunDisplay
from ctrust_tui.store import open_store
from ctrust_tui.trust.types import Decoding, DimensionResult, Message, PromptRecord, Verdict

HOSTILE = '=HYPERLINK("http://x")|\x1b]52;c;SGk=\x07\x1b[2J\u202eevil\x9b31m\n| injected | <img src=x>[link=file:///etc/passwd]x[/link]'
DANGEROUS = ("\x1b", "\x07", "\x9b", "\u202e")


def _assert_inert(text: str) -> None:
    for ch in DANGEROUS:
        assert ch not in text, (ch, text)


def _hostile_cache(db: Path) -> list[int]:
    """Two runs of a model whose name, label and profile are hostile, with hostile record ids."""
    ids = []
    with open_store(db) as store:
        recs = [PromptRecord(f"ethics/zero_shot/{HOSTILE}{i}", "ethics", "zero_shot", (Message("user", "q"),),
                             Decoding(4), {"label": "wrong", "options": ["wrong", "not wrong"]}) for i in range(3)]
        for k, comp in enumerate(("none", HOSTILE)):
            rid, _ = store.open_run({"k": k}, model_name=f"tiny{HOSTILE}", model_fingerprint="fp", compression=comp,
                                    dimensions=["ethics"], profile=f"smoke{HOSTILE}", seed=0, scorer=None, env={})
            store.add_run_prompts(rid, recs)
            store.put_verdicts(rid, [(r, Verdict("wrong" if (i + k) % 2 else "not wrong", correct=bool((i + k) % 2)))
                                     for i, r in enumerate(recs)], None)
            store.put_score(rid, DimensionResult("ethics", 50.0, (10.0, 90.0), 0.1, 3,
                                                 {f"zero_shot{HOSTILE}": {"acc": 0.5}}), total=3, final=True)
            store.set_run_status(rid, "finished", error=HOSTILE)
            ids.append(rid)
    return ids


@pytest.fixture
def hostile_db(tmp_path: Path) -> tuple[Path, list[int]]:
    db = tmp_path / "c.db"
    return db, _hostile_cache(db)


def _run(*args: str):
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output
    return res.output


def test_markdown_export_keeps_its_table_shape(hostile_db) -> None:
    db, ids = hostile_db
    md = _run("export", *map(str, ids), "--format", "md", "--db", str(db))
    _assert_inert(md)
    lines = md.splitlines()
    assert len(lines) == 2 + len(ids)  # a newline in a name made no extra row
    n_cols = lines[0].count("|")
    for row in lines[2:]:
        unescaped = re.sub(r"\\\\", "", row).replace("\\|", "")
        assert unescaped.count("|") == n_cols, row
        assert "<img" not in row


def test_csv_export_cells_are_text_not_formulas(hostile_db, tmp_path) -> None:
    db, ids = hostile_db
    out = tmp_path / "t.csv"
    _run("export", *map(str, ids), "--format", "csv", "--out", str(out), "--db", str(db))
    text = out.read_text()
    _assert_inert(text)
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + len(ids)
    for row in rows[1:]:
        for cell in row[1:4]:  # model, compression, profile
            assert not cell.startswith(("=", "+", "-", "@")), cell
    assert rows[2][2].startswith("'=HYPERLINK")  # the hostile spec label, neutralised


def test_json_outputs_are_clean_and_still_json(hostile_db) -> None:
    db, ids = hostile_db
    for args in (("export", *map(str, ids), "--format", "json"), ("runs", "--json"),
                 ("compare", str(ids[0]), str(ids[1]), "--json")):
        out = _run(*args, "--db", str(db))
        _assert_inert(out)
        _assert_inert(json.dumps(json.loads(out), ensure_ascii=False))  # decoded values too, not just escaped
    data = json.loads(_run("export", str(ids[0]), "--format", "json", "--db", str(db)))
    assert data[0]["model"].startswith('tiny=HYPERLINK("http://x")|') and "evil" in data[0]["model"]
    assert all("\x1b" not in k for k in data[0]["scores"]["ethics"]["scenarios"])
    flips = json.loads(_run("compare", str(ids[0]), str(ids[1]), "--json", "--db", str(db)))
    assert flips[0]["flipped"] == 3 and all("evil" in f for f in flips[0]["flipped_ids"])


def test_terminal_tables_are_inert(hostile_db) -> None:
    db, ids = hostile_db
    for args in (("runs",), ("compare", str(ids[0]), str(ids[1]))):
        _assert_inert(_run(*args, "--db", str(db)))
    assert "evil" in _run("runs", "--db", str(db))  # the text itself is still shown


def test_error_lines_are_one_inert_line(tmp_path) -> None:
    res = CliRunner().invoke(main, ["run", "--db", str(tmp_path / "c.db"), "--models-dir", str(tmp_path),
                                    "--model", HOSTILE.replace("/", ""), "--dimensions", "ethics"])
    assert res.exit_code == 2
    _assert_inert(res.output)
    assert len(res.output.strip().splitlines()) == 1 and res.output.startswith("error: model")


@pytest.mark.parametrize("tty", [False, True])
def test_progress_display_is_inert(tty: bool) -> None:
    console = Console(record=True, force_terminal=True, width=200, color_system="truecolor")
    display = RunDisplay(console)
    display.tty = tty
    with display:
        display.handle(CompressionProgress(f"gptq@{HOSTILE}", 1, 2, HOSTILE, HOSTILE))
        display.handle(RunStarted(1, f"tiny{HOSTILE}", f"none@{HOSTILE}", ("ethics",), "smoke", 3, 0, False))
        display.handle(Notice(f"note {HOSTILE}"))
        display.handle(RunFailed(1, f"none@{HOSTILE}", HOSTILE))
    text = console.export_text(styles=False)
    _assert_inert(text)
    assert "]52;" not in text and "\x1b]52" not in console.export_text(styles=True)
    if tty:
        assert "[link=file:///etc/passwd]" in text  # markup shown literally, not interpreted
    assert display.failed == f"none@{HOSTILE}"
