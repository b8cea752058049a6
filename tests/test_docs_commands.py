"""Every command the README and docs show works, on the versions `make setup` installs.

Fast tests parse every shown command exactly as written (every `[--option]`, every `a|b` choice):
ctrust commands through the real click tree with the callbacks replaced, benchmark scripts through
their own argparse parsers, `make` targets with `make -n`, pytest lines with `--collect-only`.
The slow test runs every ctrust command for real, in the README's workflow order, against a scratch
models folder and cache with the real default model (imported by the README's own
`ctrust models import-default`). The only changes to what is written are listed in `ADJUST`,
`EXTRA` and `FIRST_FORM_ONLY`, each with its reason (cost, or a port that may be taken).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click
import pytest
from doc_commands import REPO, DocCommand, doc_commands, expand, placeholders

from ctrust_tui.modelstore import gguf_default_source

PROGRAMS = ("ctrust", "make", "python", ".venv/bin/python", ".venv/bin/pytest")
COMMANDS = doc_commands()
CTRUST = [c for c in COMMANDS if c.words[0] == "ctrust"]


def _sub(words: tuple[str, ...]) -> str:
    """'models import', 'run', '' (the app): the subcommand path of a ctrust command."""
    path = []
    for w in words[1:]:
        if w.startswith(("-", "[")) or not re.fullmatch(r"[a-z][a-z-]*", w):
            break
        path.append(w)
        if w != "models":
            break
    return " ".join(path)


def _fill(sub: str, ws: Path) -> dict[str, str]:
    """Placeholder -> value, per subcommand (FILE is an output file for export, calibration text for compress)."""
    return {
        "DIMENSION": "stereotype",
        "FILE.jsonl": str(ws / "prompts.jsonl") if sub == "prompts" else str(ws / "scored.jsonl"),
        "FILE.gguf": str(gguf_default_source() or ws / "missing.gguf"),
        "NAME": "smollm2-reimported",
        "FILE": (str(ws / "calibration.txt") if sub == "compress" else str(ws / "grid.toml") if sub == "sweep"
                 else str(ws / "export.out")),
        "cache.db": str(ws / "cache.db"),
        "VARIANT": "smollm2-135m-instruct--gptq-4b-g128",  # written by the README's compress line
        "DIR": str(ws / "export-dir"),
        "/path/to/cache.db": str(ws / "cache.db"),  # docs/tui.md's example path
    }


# ------------------------------------------------------------------------------ fast: parse
def test_every_shell_line_in_the_docs_runs_a_known_program() -> None:
    assert len(CTRUST) >= 12, [c.text for c in CTRUST]  # the README's usage block was found
    for c in COMMANDS:
        assert c.words[0] in PROGRAMS, f"{c.source}: `{c.text}` runs {c.words[0]!r}, which no test exercises"
        assert placeholders(c.words) <= {"DIMENSION", "FILE", "FILE.jsonl", "FILE.gguf", "NAME", "VARIANT", "DIR"}, c.source


def _parse_ctrust(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Parse argv with the real click tree; every callback is replaced by a recorder."""
    from ctrust_tui.cli import main

    called: list[str] = []

    def patch(cmd: click.Command) -> None:
        monkeypatch.setattr(cmd, "callback", lambda *a, _n=cmd.name, **k: called.append(_n))
        for sub in getattr(cmd, "commands", {}).values():
            patch(sub)

    patch(main)
    main.main(argv, prog_name="ctrust", standalone_mode=False)
    return called


@pytest.mark.parametrize("cmd", CTRUST, ids=[c.source for c in CTRUST])
def test_ctrust_command_parses_as_written(cmd: DocCommand, tmp_path: Path, monkeypatch) -> None:
    fill = _fill(_sub(cmd.words), tmp_path)
    for p in ("calibration.txt", "scored.jsonl", "prompts.jsonl", "grid.toml"):
        (tmp_path / p).write_text("x\n")
    fill["FILE.gguf"] = str(tmp_path / "model.gguf")
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    for argv in expand(cmd.words, fill):
        called = _parse_ctrust(argv[1:], monkeypatch)
        assert called and called[0] == "main", argv
        assert called[-1] == (_sub(cmd.words).split()[-1] if _sub(cmd.words) else "main"), (argv, called)


BENCH = [c for c in COMMANDS if any(w.startswith("benchmarks/") for w in c.words)]


class _Parsed(Exception):
    pass


@pytest.mark.parametrize("cmd", BENCH, ids=[c.source for c in BENCH])
def test_benchmark_command_parses_as_written(cmd: DocCommand, monkeypatch) -> None:
    import argparse
    import importlib.util

    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        ns = original(self, args, namespace)  # exits 2 on an unknown option or a bad value
        raise _Parsed(ns)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    script = next(w for w in cmd.words if w.startswith("benchmarks/"))
    spec = importlib.util.spec_from_file_location(f"bench_{Path(script).stem}", REPO / script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    spec.loader.exec_module(module)
    for argv in expand(cmd.words, {}):
        args = argv[argv.index(script) + 1:]
        with pytest.raises(_Parsed):
            module.main(args)


MAKE = [c for c in COMMANDS if c.words[0] == "make"]


@pytest.mark.parametrize("cmd", MAKE, ids=[c.source for c in MAKE])
def test_make_target_exists(cmd: DocCommand) -> None:
    res = subprocess.run(["make", "-n", "-C", str(REPO), *cmd.words[1:]], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


PYTEST = [c for c in COMMANDS if c.words[0] == ".venv/bin/pytest"]


@pytest.fixture(scope="module")
def pytest_help() -> str:
    return subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, cwd=REPO).stdout


@pytest.mark.parametrize("cmd", PYTEST, ids=[c.source for c in PYTEST])
def test_pytest_line_names_real_paths_flags_and_markers(cmd: DocCommand, pytest_help: str) -> None:
    """Paths exist, flags are options of this pytest and its plugins, `-m` names a registered marker."""
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11")
    markers = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    words = list(cmd.words[1:])
    for i, w in enumerate(words):
        if w == "-m":
            assert any(m.split(":")[0] == words[i + 1].removeprefix("not ") for m in markers), cmd.source
        elif w.startswith("-"):
            assert re.search(rf"(^|[\s,]){re.escape(w)}\b", pytest_help, re.M), f"{cmd.source}: unknown flag {w}"
        elif i == 0 or words[i - 1] != "-m":
            assert (REPO / w).exists(), f"{cmd.source}: {w} does not exist"


# ------------------------------------------------------------------------------ slow: run
MODEL = REPO / "models" / "smollm2-135m-instruct"
# The README's workflow: models first, then compress and run, then what reads the runs, then the UIs.
ORDER = ("models import-default", "models import", "compress", "models list", "models pack", "models verify",
         "models export", "run", "runs", "export",
         "compare", "rescore", "recommend", "sweep", "prompts", "score", "browse", "serve", "")
ADJUST = {
    ("serve", "--port"): "0",  # port 8000 may be taken on a shared machine: a free one instead
}
# one prompt per dimension; recommend reuses run's base and specs
EXTRA = {"run": ["--limit", "1"], "recommend": ["--limit", "1"]}
# Commands whose alternatives are each minutes of CPU run their first form only (the README's own
# values, so `ctrust run` then reuses that GPTQ variant); every form is still parsed by the fast test.
FIRST_FORM_ONLY = {"compress"}
# Parsed here like every command, run for real on a tiny model in tests/compress/test_cli_models.py: the
# README's own variant (act-order GPTQ with dynamic groups) stays dense, so pack/export-packed refuse it.
RUN_ELSEWHERE = {
    "models pack": "run for real in tests/compress/test_cli_models.py (the README's variant is not packable)",
    "models export": "run for real in tests/compress/test_cli_models.py (both formats, --force, bad input)",
    "models verify": "run for real in tests/compress/test_cli_models.py",
}


# Flags whose commands run for real elsewhere, on tiny models: in this workspace they would add runs the README's
# own checks count (the README shows three runs), and each calibration seed is minutes of GPTQ on the real model.
RUN_ELSEWHERE_FLAGS = {
    "--calib-seeds": "run for real on tiny Llama models in tests/test_seed_groups.py (one GPTQ per seed)",
}


def _runs() -> list[tuple[str, list[str]]]:
    seen = [c for c in CTRUST]
    unknown = {_sub(c.words) for c in seen} - set(ORDER)
    assert not unknown, f"README/docs show ctrust {unknown}: add them to ORDER (and to this test's checks)"
    out = []
    for sub in ORDER:
        for c in seen:
            if _sub(c.words) == sub:
                out.append((sub, c))
    return out


RUNS = _runs()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("readme")
    (ws / "calibration.txt").write_text(
        "Quantization maps each weight to one of a few levels, and pruning sets some weights to zero. "
        "Both shrink a model; what they do to its behaviour is what a benchmark has to measure.\n" * 40)
    # the README's sweep takes the rest of its grid from this file: one prompt per dimension, like `run`
    (ws / "grid.toml").write_text("limit = 1\n")
    return ws


def _env(ws: Path) -> dict[str, str]:
    return {**os.environ, "CTRUST_DB": str(ws / "cache.db"), "CTRUST_MODELS": str(ws / "models"),
            "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}


def _argv(sub: str, words: list[str]) -> list[str]:
    words = list(words)
    for (s, opt), value in ADJUST.items():
        if s == sub and opt in words:
            words[words.index(opt) + 1] = value if value != "0" else str(_free_port())
    if sub == "serve" and "--port" not in words:  # the default 8000 may be taken: a free port instead
        words += ["--port", str(_free_port())]
    return [sys.executable, "-m", "ctrust_tui.cli", *words[1:], *EXTRA.get(sub, [])]


def _tui(argv: list[str], ws: Path) -> tuple[int, str]:
    """Run a Textual command in a pseudo-terminal: wait for the nav bar, quit with ctrl+q."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.chdir(ws)
        os.execve(argv[0], argv, {**_env(ws), "TERM": "xterm-256color", "LINES": "30", "COLUMNS": "100"})
    screen, end, quit_sent = b"", time.time() + 120, False
    try:
        while time.time() < end:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
            if not quit_sent and b"Browse" in screen:
                time.sleep(1.0)
                os.write(fd, b"\x11")  # ctrl+q
                quit_sent = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


def _serve(argv: list[str], ws: Path) -> tuple[int, str]:
    port = argv[argv.index("--port") + 1]
    proc = subprocess.Popen(argv, cwd=ws, env=_env(ws), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        end, page = time.time() + 60, ""
        while time.time() < end and not page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    page = resp.read().decode()
            except OSError:
                time.sleep(0.5)
        assert "textual" in page.lower(), page[:500]
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    return proc.returncode, out


@pytest.mark.slow
@pytest.mark.skipif(not (MODEL / "config.json").is_file() and not os.environ.get("CI"),
                    reason="default model not imported (make setup)")
@pytest.mark.parametrize(("sub", "cmd"), RUNS, ids=[f"{c.source}:{s or 'app'}" for s, c in RUNS])
def test_readme_command_runs(sub: str, cmd: DocCommand, workspace: Path) -> None:
    if sub in RUN_ELSEWHERE:
        pytest.skip(RUN_ELSEWHERE[sub])
    flag = next((f for f in RUN_ELSEWHERE_FLAGS if f in cmd.words), None)
    if flag is not None:
        pytest.skip(RUN_ELSEWHERE_FLAGS[flag])
    ws = workspace
    forms = expand(cmd.words, _fill(sub, ws))
    for words in forms[:1] if sub in FIRST_FORM_ONLY else forms:
        argv = _argv(sub, words)
        if sub == "score":  # the README's flow: prompts -> outputs from any engine -> score
            records = [json.loads(line) for line in (ws / "prompts.jsonl").read_text().splitlines()[:6]]
            # an engine honours each record's decoding.n (the paper samples stereotype 25 times)
            (ws / "scored.jsonl").write_text("".join(
                json.dumps({**r, "outputs": ["I disagree."] * r["decoding"].get("n", 1)}) + "\n"
                for r in records))
        if sub in ("", "browse"):
            rc, out = _tui(argv, ws)
            assert rc == 0 and "Browse" in out and "Traceback" not in out, (argv, out[-3000:])
            continue
        if sub == "serve":
            rc, out = _serve(argv, ws)
            shared = "--host" in argv and argv[argv.index("--host") + 1] not in ("127.0.0.1", "localhost")
            assert ("anyone who can reach" if shared else "this machine only") in out, out
            assert "Traceback" not in out, out
            continue
        res = subprocess.run(argv, cwd=ws, env=_env(ws), capture_output=True, text=True, timeout=1800)
        assert res.returncode == 0, (argv, res.stdout[-2000:], res.stderr[-3000:])
        assert "Traceback" not in res.stderr, res.stderr
        _check(sub, words, res.stdout, ws)


def _check(sub: str, words: list[str], out: str, ws: Path) -> None:
    """What each command must have produced, beyond exiting 0."""
    if sub == "models list":
        assert "smollm2-135m-instruct" in out and "gptq-4b-g128" in out
    elif sub == "models import":
        assert (ws / "models" / "smollm2-reimported" / "config.json").is_file()
    elif sub == "run":
        with __import__("ctrust_tui.store", fromlist=["open_store"]).open_store(ws / "cache.db", readonly=True) as s:
            runs = s.runs()
        assert [r.compression for r in sorted(runs, key=lambda r: r.id)] == ["none", "gptq-4b-g128", "wanda-2:4"]
        assert all(r.status == "finished" for r in runs)
    elif sub == "sweep":  # seed 0 cells are the runs `run` made (done before), seed 1 cells new ones
        with __import__("ctrust_tui.store", fromlist=["open_store"]).open_store(ws / "cache.db", readonly=True) as s:
            runs = s.runs()
        cells = {(r.compression, r.seed) for r in runs if r.status == "finished"}
        assert cells >= {(c, seed) for c in ("none", "gptq-4b-g128") for seed in (0, 1)}, cells
        assert len(runs) == 5 and all(r.settings["limit"] == 1 for r in runs)
    elif sub == "runs" and "--json" in words:
        assert len(json.loads(out)) == 3
    elif sub == "export":
        fmt = words[words.index("--format") + 1]
        if fmt in ("png", "svg"):
            head = (ws / "export.out").read_bytes()[:200]
            assert head.startswith(b"\x89PNG") if fmt == "png" else b"<svg" in head, head
            return
        text = (ws / "export.out").read_text()
        if fmt == "json":
            assert len(json.loads(text)) == 3
        else:
            assert "gptq-4b-g128" in text and "wanda-2:4" in text
    elif sub == "compare" and "--json" in words:
        data = json.loads(out)
        assert data["rules"] == "paper" and all("format_split" in d for d in data["dimensions"])
    elif sub == "recommend":
        assert "gptq-4b-g128" in out and "wanda-2:4" in out, out
    elif sub == "models export":
        assert (ws / "export-dir" / "config.json").is_file() and (ws / "export-dir" / "README.md").is_file()
    elif sub == "models verify":
        assert "gptq-4b-g128" in out, out
    elif sub == "rescore":
        rules = words[words.index("--rules") + 1] if "--rules" in words else "all"
        tags = ("paper@", "robust@") if rules == "all" else (f"{rules}@",)
        assert all(f"run #{rid}:" in out for rid in (1, 2)) and all(t in out for t in tags), out
    elif sub == "prompts":
        assert all(json.loads(line)["dimension"] == "stereotype"
                   for line in (ws / "prompts.jsonl").read_text().splitlines())
    elif sub == "score":
        result = json.loads(out)
        assert result["dimension"] == "stereotype" and len(result["records"]) == 6
