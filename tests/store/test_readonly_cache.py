"""Item 2 of the hardening issue: read-only commands open a WAL cache that lives somewhere
read-only (a shared results folder, a mounted backup) as a snapshot, and say so; and a damaged
`meta`/`runs` row is one "damaged cache" line, never a traceback."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from ctrust_tui.cli import main
from ctrust_tui.store import open_store
from ctrust_tui.trust.types import DimensionResult

ROOT = Path(__file__).resolve().parents[2]


def _make_cache(db: Path, n_runs: int = 2) -> list[int]:
    ids = []
    with open_store(db) as store:
        for k in range(n_runs):
            rid, _ = store.open_run({"k": k}, model_name="tiny", model_fingerprint="fp", compression=["none", "rtn-4b-g32"][k % 2],
                                    dimensions=["ethics"], profile="smoke", seed=0, scorer=None, env={})
            store.put_score(rid, DimensionResult("ethics", 60.0 + k, (50.0, 70.0), 0.0, 4, {}), total=4, final=True)
            store.set_run_status(rid, "finished")
            ids.append(rid)
    assert (db.parent / (db.name + "-wal")).exists() is False  # clean close: WAL checkpointed away
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    return ids


READ_COMMANDS = [["runs"], ["runs", "--json"], ["export", "1", "2", "--format", "md"], ["compare", "1", "2"]]


@pytest.fixture
def shared_dir():
    """A folder other users can traverse (tmp_path's parents are 0700 when tests run as root)."""
    d = Path(tempfile.mkdtemp(prefix="ctrust-ro-"))
    d.chmod(0o755)
    yield d
    for p in (d, *d.iterdir()):
        p.chmod(stat.S_IRWXU)
    shutil.rmtree(d)


def _as_other_user(argv: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI where the permission bits bind: as `nobody` when we are root, else as ourselves."""
    cmd = [sys.executable, "-m", "ctrust_tui.cli", *argv]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a folder read-only for this process")
        cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/tmp"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd="/tmp")


@pytest.mark.parametrize("argv", READ_COMMANDS)
def test_wal_cache_in_a_read_only_folder_opens_as_a_snapshot(shared_dir: Path, argv: list[str]) -> None:
    db = shared_dir / "cache.db"
    _make_cache(db)
    db.chmod(0o444)
    shared_dir.chmod(0o555)  # nobody can create cache.db-wal / -shm here
    res = _as_other_user([*argv, "--db", str(db)])
    assert res.returncode == 0, res.stderr
    assert "read-only here: showing it as a snapshot" in res.stderr
    assert res.stdout.strip()
    if argv == ["runs", "--json"]:
        assert '"compression": "rtn-4b-g32"' in res.stdout
    assert sorted(p.name for p in shared_dir.iterdir()) == ["cache.db"]  # nothing written beside it


def test_fallback_when_sqlite_cannot_create_the_wal(tmp_path: Path) -> None:
    """Same code path as a read-only folder, reproducible as any user: `-wal` cannot be created."""
    db = tmp_path / "cache.db"
    ids = _make_cache(db)
    (tmp_path / "cache.db-wal").mkdir()
    with open_store(db, readonly=True) as store:
        assert store.snapshot and "snapshot" in (store.snapshot_note or "")
        assert [r.id for r in store.runs()] == sorted(ids, reverse=True)
    for argv in READ_COMMANDS:
        res = CliRunner().invoke(main, [*argv, "--db", str(db)])
        assert res.exit_code == 0, res.output
        assert "note: " in res.output and "snapshot" in res.output


def test_writable_cache_is_read_live_not_as_snapshot(tmp_path: Path) -> None:
    """While a run writes (WAL not yet checkpointed), a reader sees its latest commits."""
    db = tmp_path / "cache.db"
    _make_cache(db, 1)
    writer = open_store(db)
    try:
        writer.set_run_status(1, "running", done=3)
        assert (tmp_path / "cache.db-wal").stat().st_size > 0
        with open_store(db, readonly=True) as reader:
            assert not reader.snapshot and reader.snapshot_note is None
            assert reader.run(1).done_generations == 3
    finally:
        writer.close()


@pytest.mark.parametrize("sql, message", [
    ("UPDATE meta SET value='v2-beta' WHERE key='schema_version'", "damaged cache: meta row 'schema_version' is 'v2-beta'"),
    ("UPDATE runs SET dimensions='[ethics' WHERE id=1", "damaged cache: runs row #1 has an invalid 'dimensions'"),
    ("UPDATE runs SET settings='null' WHERE id=1", "damaged cache: runs row #1 has an invalid 'settings'"),
    ("UPDATE runs SET env='{' WHERE id=1", "damaged cache: runs row #1 has an invalid 'env'"),
    ("UPDATE runs SET seed='zero' WHERE id=1", "damaged cache: runs row #1 has a non-numeric seed"),
])
@pytest.mark.parametrize("argv", [["runs"], ["export", "1"], ["compare", "1", "2"]])
def test_damaged_rows_are_one_line(tmp_path: Path, sql: str, message: str, argv: list[str]) -> None:
    db = tmp_path / "cache.db"
    _make_cache(db)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(sql)
    conn.close()
    before = db.read_bytes()
    res = CliRunner().invoke(main, [*argv, "--db", str(db)])
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and res.output.startswith("error: ") and message in res.output, res.output
    assert db.read_bytes() == before
