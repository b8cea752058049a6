"""The SQLite cache (`cache.db`): content-addressed generations, runs, verdicts, scores.

WAL mode so `ctrust browse` (read-only, another process) never blocks a writing run; writes
are batched into transactions so a `kill -9` loses at most the batch in flight and the file
stays consistent. Pure Python (sqlite-utils over sqlite3): no torch.

Writes go through sqlite-utils (`insert_all` for generations and forensics, `insert` for new
runs, scores and the meta rows), committed once per batch by `_write` (store/lib.py holds
sqlite-utils' own commits back). SQL stays where sqlite-utils cannot say it or where it was
measured to cost (benchmarks/bench_store.py, docs/performance.md "Store on sqlite-utils"; two
runs on a shared 2-core machine):
- `put_verdicts` and `add_run_prompts` use executemany: with `insert_all` they ran at 0.54-0.80
  and 0.79-0.85 of its throughput (it converts every value in Python), while generations gained
  (1.19-1.48x) and moved.
- `upsert_model` is one ON CONFLICT statement that keeps `first_seen` (sqlite-utils' upsert is an
  INSERT OR IGNORE plus an UPDATE); the run UPDATEs use CASE/COALESCE.
- Reads are joins (run_items, judged, search), IN lists and GROUP BYs, which `rows_where` (one
  table) cannot express; on the 1M-generation cache they timed 0.89-1.00x of before.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from ..errors import StoreError
from ..trust.rules import DEFAULT_RULES, RULES_VERSION
from ..trust.types import DimensionResult, PromptRecord, Verdict, canonical_json, sha256_hex
from .lib import library
from .schema import APP_MARKER, MIGRATIONS, READABLE_FROM, SCHEMA_VERSION, legacy_views

BATCH_SIZE = 1000  # rows per insert_all chunk asked for; sqlite-utils caps it at 999 variables (71 generations)


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def generation_key(model_fingerprint: str, compression: str, rendered_prompt: str, decoding: Mapping[str, Any],
                   sample_index: int, seed: int, *, prompt_format: str = "model", dtype: str = "float32") -> str:
    """Content address of one generation: same inputs, same key, never generated twice.

    A non-default prompt format is part of the key even though it already changes the rendered
    text: the fork's templates also post-process the output (stop-string cut). The dtype the model
    ran in is part of it unless float32 (what every earlier key was made in on CPU, so those keys
    stay valid)."""
    payload = {
        "model": model_fingerprint,
        "compression": compression,
        "prompt": sha256_hex(rendered_prompt),
        "decoding": dict(decoding),
        "sample": sample_index,
        "seed": seed,
    }
    if prompt_format != "model":
        payload["prompt_format"] = prompt_format
    if dtype != "float32":
        payload["dtype"] = dtype
    return sha256_hex(canonical_json(payload))[:40]


def _asks(record: Mapping[str, Any]) -> str:
    """What a stored record asks the model (its messages and decoding): records equal here share generations."""
    return sha256_hex(canonical_json([record.get("messages"), record.get("decoding")]))


def engine_tag(settings: Mapping[str, Any]) -> str:
    """What a run's generations have in common beyond model, compression, seed and prompt: the
    dtype (absent = float32) and prompt format (absent = the model's template), as in its settings.
    '' for the defaults, so every generation made before either existed keeps matching."""
    parts = [f"{k}={settings[k]}" for k in ("dtype", "prompt_format") if settings.get(k)]
    return ";".join(parts)


@dataclass(frozen=True)
class RunRow:
    id: int
    model_name: str
    compression: str
    dimensions: tuple[str, ...]
    profile: str
    seed: int
    scorer: str | None
    status: str
    created_at: str
    updated_at: str
    total_generations: int
    done_generations: int
    settings: Mapping[str, Any]
    env: Mapping[str, Any]
    error: str | None

    @property
    def label(self) -> str:
        return f"#{self.id} {self.model_name} · {self.compression} · {self.profile}"

    @property
    def shown_status(self) -> str:
        """`status`, except that a "running" run whose process is gone (killed with SIGKILL, a
        power cut) reads "interrupted": nothing can mark it at the time. Judged only on the host
        that started it (its pid and host name are in `env`); re-running the same settings resumes it."""
        if self.status != "running":
            return self.status
        pid, host = self.env.get("pid"), self.env.get("host")
        if not isinstance(pid, int) or host != socket.gethostname():
            return self.status
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "interrupted"
        except OSError:  # exists but not ours (PermissionError): still running
            pass
        return self.status


@dataclass(frozen=True)
class ScoreRow:
    run_id: int
    dimension: str
    score: float | None
    ci_low: float | None
    ci_high: float | None
    refusal_rate: float | None
    n: int
    total: int | None
    scenarios: Mapping[str, Any]
    scorer: str | None
    final: bool
    rules: str = DEFAULT_RULES
    rules_version: int = 1
    refusal_phrase_rate: float | None = None

    @property
    def stale(self) -> bool:
        """Made by an older version of its rule set: `ctrust rescore` re-derives it."""
        return self.rules_version != RULES_VERSION.get(self.rules)


@dataclass(frozen=True)
class GenerationRow:
    """One cached output with what made it (forensics re-renders the prompt and checks its hash)."""

    key: str
    rendered_hash: str
    decoding: Mapping[str, Any]
    sample_index: int
    output: str
    finish: str | None


@dataclass(frozen=True)
class ItemRow:
    """One judged prompt of a run, with its outputs (for drill-down and compare)."""

    prompt_key: str
    record: PromptRecord
    verdict: Verdict | None
    outputs: tuple[str, ...]


def _friendly(exc: sqlite3.Error, path: Path) -> StoreError:
    msg = str(exc).lower()
    if "readonly" in msg or "read-only" in msg:
        return StoreError(f"{path}: the cache is read-only; use --db to point at a writable file")
    if "full" in msg:
        return StoreError(f"{path}: the disk is full; free space or use --db elsewhere (cache left intact)")
    if "not a database" in msg or "malformed" in msg:
        return StoreError(f"{path}: not a SQLite database (or damaged); use --db to choose another file")
    if "unable to open" in msg:
        return StoreError(f"{path}: cannot open the cache file (missing folder or no permission); use --db elsewhere")
    if "disk i/o" in msg:
        return StoreError(f"{path}: disk I/O error writing the cache (cache left as it was); check the disk or use --db")
    if "locked" in msg:
        return StoreError(f"{path}: the cache is locked by another process; try again")
    return StoreError(f"{path}: {exc}")


class Store:
    """A handle on one cache file. Not thread-safe: one Store per thread."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.snapshot = False  # opened immutable: a read-only file/folder where SQLite cannot share the WAL
        try:
            if readonly:
                if not self.path.is_file():
                    raise StoreError(f"{self.path}: no such cache file (run `ctrust run ...` first, or pass --db)")
                conn = self._connect_readonly()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(str(self.path), timeout=10.0, check_same_thread=False)
            self.conn = conn
        except sqlite3.Error as exc:
            raise _friendly(exc, self.path) from None
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            self.db = library(conn)  # sqlite-utils; commits only where the store's `with conn:` ends
            self._check_and_migrate()
        except sqlite3.Error as exc:
            conn.close()
            raise _friendly(exc, self.path) from None
        except BaseException:
            conn.close()
            raise

    # -- lifecycle ------------------------------------------------------------------
    def _connect_readonly(self) -> sqlite3.Connection:
        """`mode=ro` first: it sees a live writer's WAL. Reading a WAL cache needs its -shm/-wal files;
        where SQLite cannot create them (a read-only folder or file, a mounted backup) the first read
        fails, and the file is reopened `immutable=1`: a snapshot of the main file, no locks taken."""
        uri = self.path.expanduser().resolve().as_uri()  # percent-encodes '?', '#', '%' in the path
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=5.0, check_same_thread=False)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            msg = str(exc).lower()
            if not any(m in msg for m in ("readonly", "read-only", "unable to open")):
                raise
        self.snapshot = True
        return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=5.0, check_same_thread=False)

    @property
    def snapshot_note(self) -> str | None:
        """One line for the CLI/TUI when the cache was opened as an immutable snapshot."""
        if not self.snapshot:
            return None
        wal = self.path.with_name(self.path.name + "-wal")
        unmerged = wal.is_file() and wal.stat().st_size > 0
        return (f"{self.path} is read-only here: showing it as a snapshot"
                + (f" (changes still in {wal.name} are not shown)" if unmerged else ""))

    def _check_and_migrate(self) -> None:
        tables = set(self.db.table_names())
        version = 0
        if tables:
            if "meta" not in tables:
                raise StoreError(
                    f"{self.path}: this SQLite file is not a ctrust cache (no meta table); "
                    "refusing to touch it — pass another --db"
                )
            meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("app") != APP_MARKER:
                raise StoreError(f"{self.path}: not a ctrust cache (app marker missing); pass another --db")
            try:
                version = int(meta.get("schema_version", "0"))
            except (TypeError, ValueError):
                raise StoreError(f"{self.path}: damaged cache: meta row 'schema_version' is "
                                 f"{str(meta.get('schema_version'))[:40]!r}, not a number; use another --db") from None
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer ctrust (schema v{version} > v{SCHEMA_VERSION}); "
                    "upgrade ctrust or use another --db"
                )
        if self.readonly:
            if version < READABLE_FROM:
                raise StoreError(f"{self.path}: cache schema v{version} is too old to read; open it once with "
                                 "`ctrust run` to migrate it")
            legacy_views(self.conn, version)  # older versions are read through v3-shaped views
            return
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        if version < SCHEMA_VERSION:
            # The app marker is committed first, then each migration with its version bump in one
            # explicit transaction (sqlite-utils' own commits are held back, store/lib.py), so a kill
            # at any point leaves version N or N+1, which the next open recognises and finishes.
            with self.conn:
                self.conn.execute("BEGIN")
                self.db.create_table("meta", {"key": str, "value": str}, pk="key", if_not_exists=True)
                self.db["meta"].insert_all([{"key": "app", "value": APP_MARKER}], replace=True)
                self.db["meta"].insert_all([{"key": "schema_version", "value": str(version)}], ignore=True)
            for i in range(version, SCHEMA_VERSION):
                with self.conn:
                    self.conn.execute("BEGIN")
                    MIGRATIONS[i](self.conn)
                    self.db["meta"].update("schema_version", {"value": str(i + 1)})

    def close(self) -> None:
        self.conn.close()

    def _generations_have_engine(self) -> bool:
        """False on a pre-v4 cache opened read-only (never migrated by a reader)."""
        if not hasattr(self, "_has_engine"):
            self._has_engine = any(r[1] == "engine" for r in self.conn.execute("PRAGMA table_info(generations)"))
        return self._has_engine

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, fn, *args: Any) -> Any:
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only")
        try:
            with self.conn:
                return fn(*args)
        except sqlite3.Error as exc:
            raise _friendly(exc, self.path) from None

    # -- models and runs ------------------------------------------------------------
    def upsert_model(self, fingerprint: str, name: str, path: str, metadata: Mapping[str, Any]) -> None:
        def do() -> None:
            self.conn.execute(
                "INSERT INTO models(fingerprint, name, path, metadata, first_seen) VALUES (?,?,?,?,?) "
                "ON CONFLICT(fingerprint) DO UPDATE SET name=excluded.name, path=excluded.path, metadata=excluded.metadata",
                (fingerprint, name, path, json.dumps(metadata), now()),
            )

        self._write(do)

    def open_run(self, settings: Mapping[str, Any], *, model_name: str, model_fingerprint: str, compression: str,
                 dimensions: Sequence[str], profile: str, seed: int, scorer: str | None,
                 env: Mapping[str, Any]) -> tuple[int, bool]:
        """Find the run with identical settings (resume) or create it. Returns (run_id, resumed)."""
        settings_hash = sha256_hex(canonical_json(dict(settings)))[:32]

        def do() -> tuple[int, bool]:
            row = self.conn.execute("SELECT id FROM runs WHERE settings_hash = ?", (settings_hash,)).fetchone()
            ts = now()
            if row:
                self.conn.execute(
                    "UPDATE runs SET status='running', updated_at=?, started_at=?, env=?, error=NULL WHERE id=?",
                    (ts, ts, json.dumps(dict(env)), row[0]),
                )
                return int(row[0]), True
            runs = self.db["runs"].insert({
                "settings_hash": settings_hash, "model_name": model_name, "model_fingerprint": model_fingerprint,
                "compression": compression, "dimensions": json.dumps(list(dimensions)), "profile": profile,
                "seed": seed, "scorer": scorer, "settings": canonical_json(dict(settings)), "status": "running",
                "created_at": ts, "updated_at": ts, "started_at": ts, "env": json.dumps(dict(env))})
            return int(runs.last_rowid), False

        return self._write(do)

    def set_run_status(self, run_id: int, status: str, *, error: str | None = None,
                       done: int | None = None, total: int | None = None) -> None:
        def do() -> None:
            ts = now()
            self.conn.execute(
                "UPDATE runs SET status=?, updated_at=?, error=?, "
                "finished_at=CASE WHEN ? IN ('finished','failed','cancelled') THEN ? ELSE finished_at END, "
                "done_generations=COALESCE(?, done_generations), total_generations=COALESCE(?, total_generations) "
                "WHERE id=?",
                (status, ts, error, status, ts, done, total, run_id),
            )

        self._write(do)

    def add_run_prompts(self, run_id: int, records: Sequence[PromptRecord]) -> list[str]:
        keys = [r.key for r in records]

        def do() -> None:  # executemany, not insert_all: measured faster (module docstring)
            self.conn.executemany(
                "INSERT OR IGNORE INTO prompts(prompt_key, record_id, dimension, scenario, record) VALUES (?,?,?,?,?)",
                [(r.key, r.id, r.dimension, r.scenario, canonical_json(r.to_dict())) for r in records],
            )
            self.conn.executemany(
                "INSERT OR IGNORE INTO run_prompts(run_id, prompt_key, position) VALUES (?,?,?)",
                [(run_id, k, i) for i, k in enumerate(keys)],
            )

        self._write(do)
        return keys

    # -- generations ----------------------------------------------------------------
    def cached_outputs(self, keys: Iterable[str]) -> dict[str, str]:
        keys = list(keys)
        out: dict[str, str] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            q = f"SELECT key, output FROM generations WHERE key IN ({','.join('?' * len(part))})"
            out.update({k: o for k, o in self.conn.execute(q, part)})
        return out

    def put_generations(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert finished generations in one transaction (idempotent on the content key)."""
        if not rows:
            return

        def do() -> None:
            ts = now()
            self.db["generations"].insert_all(
                ({"key": r["key"], "model_fingerprint": r["model_fingerprint"], "compression": r["compression"],
                  "prompt_key": r["prompt_key"], "rendered_hash": r["rendered_hash"],
                  "decoding": canonical_json(r["decoding"]), "sample_index": r["sample_index"], "seed": r["seed"],
                  "output": r["output"], "n_tokens": r.get("n_tokens"), "finish": r.get("finish"),
                  "seconds": r.get("seconds"), "created_at": ts, "engine": r.get("engine", "")} for r in rows),
                ignore=True, batch_size=BATCH_SIZE)

        self._write(do)

    # -- verdicts and scores --------------------------------------------------------
    def put_verdicts(self, run_id: int, items: Sequence[tuple[PromptRecord, Verdict]],
                     scorer: Callable[[str], str | None] | str | None, *, rules: str = DEFAULT_RULES) -> None:
        """Verdicts of one rule set (replacing that set's earlier ones); `scorer` names who judged,
        per dimension when given as a function."""
        version = RULES_VERSION[rules]

        def who(dim: str) -> str | None:
            return scorer(dim) if callable(scorer) else scorer

        def do() -> None:  # executemany, not insert_all: measured faster (module docstring)
            self.conn.executemany(
                "INSERT OR REPLACE INTO verdicts(run_id, prompt_key, rules, rules_version, record_id, dimension,"
                " scenario, verdict, refusal, correct, leak, data, scorer) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (run_id, rec.key, rules, version, rec.id, rec.dimension, rec.scenario, v.verdict, int(v.refusal),
                     None if v.correct is None else int(v.correct), None if v.leak is None else int(v.leak),
                     json.dumps(v.to_dict()), who(rec.dimension))
                    for rec, v in items
                ],
            )

        self._write(do)

    def put_score(self, run_id: int, result: DimensionResult, *, total: int, final: bool) -> None:
        def do() -> None:
            ci = result.ci95 or (None, None)
            self.db["scores"].insert({
                "run_id": run_id, "dimension": result.dimension, "rules": result.rules,
                "rules_version": RULES_VERSION[result.rules], "score": result.score, "ci_low": ci[0], "ci_high": ci[1],
                "refusal_rate": result.refusal_rate, "refusal_phrase_rate": result.refusal_phrase_rate, "n": result.n,
                "total": total, "scenarios": json.dumps({k: dict(v) for k, v in result.scenarios.items()}),
                "scorer": result.scorer, "final": int(final), "updated_at": now()}, replace=True)

        self._write(do)

    def verdict_rules(self, run_id: int) -> dict[str, dict[str, Any]]:
        """Which rule sets a run has verdicts under: {rules: {"versions": [...], "n": count}}."""
        out: dict[str, dict[str, Any]] = {}
        for rules, version, n in self.conn.execute(
                "SELECT rules, rules_version, COUNT(*) FROM verdicts WHERE run_id = ? GROUP BY rules, rules_version",
                (run_id,)):
            entry = out.setdefault(rules, {"versions": [], "n": 0})
            entry["versions"].append(int(version))
            entry["n"] += int(n)
        return out

    def run_fingerprint(self, run_id: int) -> str | None:
        """Fingerprint of the weights that made a run's outputs (its generations are keyed by it)."""
        row = self.conn.execute("SELECT model_fingerprint FROM runs WHERE id = ?", (run_id,)).fetchone()
        return str(row[0]) if row else None

    def model_path(self, fingerprint: str) -> str | None:
        """Where the model with this fingerprint was loaded from (decision records hash its weights)."""
        row = self.conn.execute("SELECT path FROM models WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return str(row[0]) if row and row[0] else None

    # -- reading --------------------------------------------------------------------
    def _run_row(self, r: sqlite3.Row | tuple) -> RunRow:
        (rid, model_name, compression, dims, profile, seed, scorer, status, created, updated, total, done,
         settings, env, error) = r

        def load(column: str, text: Any, kind: type) -> Any:
            try:
                value = json.loads(text)
            except (TypeError, ValueError):
                value = None
            if not isinstance(value, kind):
                raise StoreError(f"{self.path}: damaged cache: runs row #{rid} has an invalid '{column}' "
                                 f"(not a JSON {kind.__name__}); use another --db")
            return value

        try:
            return RunRow(int(rid), str(model_name), str(compression), tuple(map(str, load("dimensions", dims, list))),
                          str(profile), int(seed), scorer, str(status), created, updated, int(total or 0),
                          int(done or 0), load("settings", settings, dict), load("env", env or "{}", dict), error)
        except (TypeError, ValueError):
            raise StoreError(f"{self.path}: damaged cache: runs row #{rid} has a non-numeric seed or count; "
                             "use another --db") from None

    _RUN_COLS = ("id, model_name, compression, dimensions, profile, seed, scorer, status, created_at, updated_at,"
                 " total_generations, done_generations, settings, env, error")

    def runs(self, limit: int = 1000) -> list[RunRow]:
        rows = self.conn.execute(f"SELECT {self._RUN_COLS} FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [self._run_row(r) for r in rows]

    def run(self, run_id: int) -> RunRow | None:
        r = self.conn.execute(f"SELECT {self._RUN_COLS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._run_row(r) if r else None

    def scores(self, run_ids: Sequence[int] | None = None, *, rules: str | None = DEFAULT_RULES) -> list[ScoreRow]:
        """Stored scores of one rule set (`rules=None`: every rule set)."""
        q = ("SELECT run_id, dimension, score, ci_low, ci_high, refusal_rate, n, total, scenarios, scorer, final,"
             " rules, rules_version, refusal_phrase_rate FROM scores WHERE 1=1")
        args: list[Any] = []
        if run_ids is not None:
            if not run_ids:
                return []
            q += f" AND run_id IN ({','.join('?' * len(run_ids))})"
            args = list(run_ids)
        if rules is not None:
            q += " AND rules = ?"
            args.append(rules)
        return [
            ScoreRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8] or "{}"), r[9], bool(r[10]),
                     r[11], int(r[12]), r[13])
            for r in self.conn.execute(q, args)
        ]

    def run_items(self, run_id: int, dimension: str | None = None, *, limit: int | None = None,
                  offset: int = 0, with_outputs: bool = True, rules: str = DEFAULT_RULES) -> list[ItemRow]:
        """Judged (or pending) prompts of a run in run order, with outputs of the run's model."""
        run = self.run(run_id)
        if run is None:
            return []
        q = ("SELECT rp.prompt_key, p.record, v.data FROM run_prompts rp JOIN prompts p ON p.prompt_key = rp.prompt_key"
             " LEFT JOIN verdicts v ON v.run_id = rp.run_id AND v.prompt_key = rp.prompt_key AND v.rules = ?"
             " WHERE rp.run_id = ?")
        args: list[Any] = [rules, run_id]
        if dimension:
            q += " AND p.dimension = ?"
            args.append(dimension)
        q += " ORDER BY rp.position"
        if limit is not None:
            q += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        rows = self.conn.execute(q, args).fetchall()
        where, wargs = self._outputs_of(run)
        out_q = f"SELECT output FROM generations g WHERE g.prompt_key=?{where} ORDER BY g.sample_index"
        found: dict[str, tuple[str, ...]] = {}
        if with_outputs:
            found = {key: tuple(o for (o,) in self.conn.execute(out_q, (key, *wargs))) for key, _, _ in rows}
            twins = self._twins(run, {key: rec for key, rec, _ in rows if not found[key]})
            for key, twin in twins.items():
                found[key] = tuple(o for (o,) in self.conn.execute(out_q, (twin, *wargs)))
        return [ItemRow(key, PromptRecord.from_dict(json.loads(rec_json)),
                        Verdict.from_dict(json.loads(vdata)) if vdata else None, found.get(key, ()))
                for key, rec_json, vdata in rows]

    def _outputs_of(self, run: RunRow) -> tuple[str, tuple[Any, ...]]:
        """The WHERE terms (on generations `g`) selecting a run's outputs: its model, spec, seed, and on a v4+
        cache its precision and prompt format."""
        fp = self.conn.execute("SELECT model_fingerprint FROM runs WHERE id=?", (run.id,)).fetchone()[0]
        where = " AND g.model_fingerprint=? AND g.compression=? AND g.seed=?"
        args: tuple[Any, ...] = (fp, run.compression, run.seed)
        if self._generations_have_engine():  # v4+: only this run's precision and prompt format
            tag = engine_tag(run.settings)
            # generations made before v4 have '' (float32 then): a run differing only in prompt format
            # still finds them; one in another dtype never does
            where += " AND g.engine IN (?, '')" if tag and "dtype=" not in tag else " AND g.engine = ?"
            args += (tag,)
        return where, args

    def _twins(self, run: RunRow, missing: Mapping[str, str]) -> dict[str, str]:
        """prompt_key -> the prompt_key its outputs are cached under, for records without outputs of their own.

        The cache is content-addressed (store.db.generation_key): two records that ask the model the same thing
        (same messages and decoding; fairness's zero-shot crime items recur under every base rate, 2 of 36 quick
        records at --limit 36) share one generation row, filed under the prompt_key of whichever record came
        first, possibly in another run. Looking outputs up by prompt_key alone lost the second record: rescore
        skipped it (fairness 77.3 -> 75.0 on the same outputs) and Browse showed no output."""
        if not missing:
            return {}
        want: dict[str, list[str]] = {}
        dims: set[str] = set()
        for key, rec_json in missing.items():
            rec = json.loads(rec_json)
            want.setdefault(_asks(rec), []).append(key)
            dims.add(str(rec.get("dimension", "")))
        where, args = self._outputs_of(run)
        marks = ",".join("?" * len(dims))
        out: dict[str, str] = {}
        for pk, rec_json in self.conn.execute(
                f"SELECT DISTINCT p.prompt_key, p.record FROM generations g JOIN prompts p ON p.prompt_key = g.prompt_key"
                f" WHERE p.dimension IN ({marks}){where}", (*sorted(dims), *args)):
            for key in want.get(_asks(json.loads(rec_json)), ()):
                out.setdefault(key, pk)
        return out

    def run_generations(self, run_id: int, prompt_key: str) -> list[GenerationRow]:
        """A run's cached outputs of one prompt, in sample order (the lookup `run_items` does, with keys)."""
        run = self.run(run_id)
        if run is None:
            return []
        where, args = self._outputs_of(run)
        q = ("SELECT key, rendered_hash, decoding, sample_index, output, finish FROM generations g"
             f" WHERE g.prompt_key=?{where} ORDER BY g.sample_index")
        rows = self.conn.execute(q, (prompt_key, *args)).fetchall()
        if not rows:
            rec = self.conn.execute("SELECT record FROM prompts WHERE prompt_key=?", (prompt_key,)).fetchone()
            twin = self._twins(run, {prompt_key: rec[0]}).get(prompt_key) if rec else None
            if twin is not None:
                rows = self.conn.execute(q, (twin, *args)).fetchall()
        return [GenerationRow(k, h, json.loads(d or "{}"), int(i), o, f) for k, h, d, i, o, f in rows]

    def forensics(self, pairs: Iterable[tuple[str, str]], method: int) -> dict[tuple[str, str], dict[str, Any]]:
        """Cached flip forensics of (base generation key, variant generation key) pairs made by `method`."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for b, v in pairs:
            row = self.conn.execute("SELECT data FROM flip_forensics WHERE base_key=? AND variant_key=? AND method=?",
                                    (b, v, method)).fetchone()
            if row is not None:
                try:
                    data = json.loads(row[0])
                except (TypeError, ValueError):
                    continue  # a damaged row is recomputed, never shown
                if isinstance(data, dict):
                    out[(b, v)] = data
        return out

    def put_forensics(self, rows: Sequence[tuple[str, str, int, Mapping[str, Any]]]) -> None:
        """Store (base key, variant key, method, data) rows in one transaction, replacing older ones."""
        if not rows:
            return

        def do() -> None:
            ts = now()
            self.db["flip_forensics"].insert_all(
                ({"base_key": b, "variant_key": v, "method": m, "data": canonical_json(dict(d)), "created_at": ts}
                 for b, v, m, d in rows), replace=True, batch_size=BATCH_SIZE)

        self._write(do)

    def judged(self, run_id: int, dimension: str, rules: str = DEFAULT_RULES) -> list[tuple[PromptRecord, Verdict]]:
        """(record, verdict) pairs of one dimension under one rule set: the input to aggregation and comparisons."""
        rows = self.conn.execute(
            "SELECT p.record, v.data FROM verdicts v JOIN prompts p ON p.prompt_key = v.prompt_key"
            " WHERE v.run_id = ? AND v.rules = ? AND v.dimension = ? ORDER BY v.record_id",
            (run_id, rules, dimension),
        )
        return [(PromptRecord.from_dict(json.loads(r)), Verdict.from_dict(json.loads(d))) for r, d in rows]

    def search(self, query: str, limit: int = 50) -> list[dict[str, Any]]:
        """Full-text search over outputs; every word is quoted so user text cannot inject FTS syntax.

        Quotes are removed before `quote_fts`: it keeps a user's "quoted phrase", and one that spans
        a newline ends outside the quoting ('"x\nOR\ny"' searched x OR y). SQL, not `table.search`:
        the hit joins its prompt, and caches made before sqlite-utils have an index `detect_fts`
        does not find (content='generations')."""
        fts_q = self.db.quote_fts(query.replace('"', " "))
        if not fts_q:
            return []
        try:
            rows = self.conn.execute(
                "SELECT g.key, g.prompt_key, g.compression, g.output, p.record_id, p.dimension"
                " FROM generations_fts f JOIN generations g ON g.rowid = f.rowid"
                " LEFT JOIN prompts p ON p.prompt_key = g.prompt_key"
                " WHERE generations_fts MATCH ? ORDER BY rank LIMIT ?",
                (fts_q, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise _friendly(exc, self.path) from None
        return [dict(zip(("key", "prompt_key", "compression", "output", "record_id", "dimension"), r)) for r in rows]

    def counts(self) -> dict[str, int]:
        return {t: self.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("runs", "prompts", "generations", "verdicts", "scores")}

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def open_store(path: Path | str | os.PathLike[str], *, readonly: bool = False) -> Store:
    return Store(Path(path), readonly=readonly)


def iter_chunks(seq: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]
