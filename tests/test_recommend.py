"""`ctrust recommend`: ranking by bits/weight then sparsity, the pick, ties, nothing-qualifies, bad input."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import FakeBackend

import ctrust_tui.cli as cli
import ctrust_tui.runner as runner_mod
from ctrust_tui.cli import main
from ctrust_tui.compress.spec import parse_spec, parse_specs
from ctrust_tui.errors import CtrustError
from ctrust_tui.recommend import compression_rank, recommend
from ctrust_tui.runner import RunConfig, Runner
from ctrust_tui.store import open_store
from ctrust_tui.tables import recommend_table
from ctrust_tui.trust import get_dimension, get_profile
from ctrust_tui.trust.chat import render_plain
from ctrust_tui.trust.noninferiority import Margins

DIMS = ("advglue", "ethics")
MARGIN = Margins(40.0)  # 8 prompts per dimension can show "within 40 points", not less


@lru_cache(maxsize=1)
def _gold() -> dict[str, tuple[str, str]]:
    """Rendered prompt -> (right answer, a wrong one), for the smoke prompts of DIMS."""
    out = {}
    for d in DIMS:
        for r in get_dimension(d).build_prompts(get_profile("smoke")) + get_dimension(d).build_prompts(
                get_profile("quick")):
            label = str(r.context["label"])
            wrong = next(o for o in r.context["options"] if o != label)
            out[render_plain(r.messages)] = (label, wrong)
    return out


def _right(req) -> str:
    return _gold()[req.prompt][0]


def _wrong(req) -> str:
    return _gold()[req.prompt][1]


def _factory(broken: set[str]):
    """Every spec answers right, as the base does, except the `broken` ones, which answer wrong."""
    def factory(model, spec, cfg, progress, cancel):
        script = _wrong if str(spec) in broken else _right
        return FakeBackend(script=script, compression=str(spec), fingerprint=f"fake-{spec}")

    return factory


def _runs(models: Path, db: Path, specs: str, broken: set[str]) -> list[int]:
    cfg = RunConfig(model="stub-model", compressions=parse_specs(specs), dimensions=DIMS, profile="smoke",
                    db_path=db, models_dir=models, limit=8)
    return Runner(cfg, lambda e: None, backend_factory=_factory(broken)).execute()


def test_specs_rank_by_bits_per_weight_then_sparsity() -> None:
    order = sorted(["none", "wanda-0.5", "sparsegpt-2:4", "rtn-4b-g32", "gptq-4b-g64", "gptq-3b-g64", "awq-3b-g64",
                    "wanda-0.7"], key=lambda s: compression_rank(parse_spec(s)))
    assert order[:4] == ["gptq-3b-g64", "awq-3b-g64", "gptq-4b-g64", "rtn-4b-g32"]
    assert order[4] == "wanda-0.7" and set(order[5:7]) == {"wanda-0.5", "sparsegpt-2:4"} and order[-1] == "none"
    assert compression_rank(parse_spec("wanda-0.5")) == compression_rank(parse_spec("sparsegpt-2:4"))


def test_the_most_compressed_qualifying_spec_is_picked(stub_models, db_path) -> None:
    ids = _runs(stub_models, db_path, "none,rtn-4b-g32,gptq-4b-g64,gptq-3b-g64", broken={"gptq-3b-g64"})
    with open_store(db_path, readonly=True) as store:
        rec = recommend(store, ids[0], ids[1:], margins=MARGIN)
    assert [c.spec for c in rec.candidates] == ["gptq-3b-g64", "gptq-4b-g64", "rtn-4b-g32"]
    assert [c.spec for c in rec.chosen] == ["gptq-4b-g64"]
    (rej,) = rec.rejected
    assert rej.spec == "gptq-3b-g64" and rej.failing
    assert all(c.decision.verdict != "non-inferior" for c in rej.failing)
    assert [c.spec for c in rec.less_compressed] == ["rtn-4b-g32"]
    assert rec.summary.startswith("gptq-4b-g64")
    data = rec.to_dict()
    assert data["recommendation"] == ["gptq-4b-g64"] and data["rejected_more_compressed"] == ["gptq-3b-g64"]
    assert not data["tie"] and not data["nothing_qualifies"]
    text = _render(recommend_table(rec))
    assert "recommended" in text and "rejected: " in text


def test_ties_and_nothing_qualifies_are_explicit(stub_models, db_path) -> None:
    ids = _runs(stub_models, db_path, "none,gptq-3b-g64,wanda-0.5,sparsegpt-2:4", broken={"gptq-3b-g64"})
    with open_store(db_path, readonly=True) as store:
        rec = recommend(store, ids[0], ids[1:], margins=MARGIN)
        assert {c.spec for c in rec.chosen} == {"wanda-0.5", "sparsegpt-2:4"}
        assert rec.summary.startswith("tie: ") and rec.to_dict()["tie"]
        assert [c.spec for c in rec.rejected] == ["gptq-3b-g64"]
        strict = recommend(store, ids[0], ids[1:], margins=Margins(1.0))
        assert strict.chosen == () and strict.summary.startswith("nothing qualifies")
        assert strict.to_dict()["nothing_qualifies"] and len(strict.rejected) == 3
        with pytest.raises(CtrustError, match="at least two"):
            recommend(store, ids[0], ids[1:2], margins=MARGIN)
        with pytest.raises(CtrustError, match="not the dense base"):
            recommend(store, ids[1], ids[2:], margins=MARGIN)


def _render(table) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def test_recommend_command_runs_base_and_specs_then_decides(stub_models, db_path, monkeypatch) -> None:
    broken = {"gptq-3b-g64"}

    class FakeRunner(Runner):
        def __init__(self, cfg, emit, **kw):
            super().__init__(cfg, emit, backend_factory=_factory(broken), **{k: v for k, v in kw.items()
                                                                              if k != "backend_factory"})

    monkeypatch.setattr(runner_mod, "Runner", FakeRunner)
    monkeypatch.setattr(cli, "_check_model", lambda model, models: None)
    args = ["--db", str(db_path), "--models-dir", str(stub_models), "recommend", "stub-model",
            "--compression", "gptq-3b-g64,gptq-4b-g64", "--dimensions", ",".join(DIMS), "--profile", "smoke",
            "--limit", "8", "--margin", "40", "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("{"):])
    assert data["recommendation"] == ["gptq-4b-g64"] and data["rejected_more_compressed"] == ["gptq-3b-g64"]
    assert data["margin"] == {"default": 40.0} and data["profile"] == "smoke"
    # a second call reuses every run from the cache (no new runs)
    with open_store(db_path, readonly=True) as store:
        n_runs = len(store.runs())
    assert CliRunner().invoke(main, args).exit_code == 0
    with open_store(db_path, readonly=True) as store:
        assert len(store.runs()) == n_runs == 3


def test_recommend_markdown_is_the_same_decision_as_a_table(stub_models, db_path, monkeypatch) -> None:
    _fake_runners(monkeypatch, broken={"gptq-3b-g64"})
    args = ["--db", str(db_path), "--models-dir", str(stub_models), "recommend", "stub-model",
            "--compression", "gptq-3b-g64,gptq-4b-g64,rtn-4b-g32", "--dimensions", ",".join(DIMS), "--profile",
            "smoke", "--limit", "8", "--margin", "40"]
    res = CliRunner().invoke(main, [*args, "--markdown"])
    assert res.exit_code == 0, res.output
    rows = [line for line in res.stdout.splitlines() if line.startswith("| ")]
    assert rows[0] == "| spec | run | bits/w | sparse | `advglue` | `ethics` | decision |"
    body = {r.split(" | ")[0][2:]: r for r in rows[1:]}
    assert list(body) == ["gptq-3b-g64", "gptq-4b-g64", "rtn-4b-g32"]  # most compressed first
    assert body["gptq-3b-g64"].endswith("| rejected: advglue; ethics |")
    assert "| -100.0 [-100.0, -30.4] inconclusive (+13) |" in body["gptq-3b-g64"]  # upper bound above -40
    assert body["gptq-4b-g64"].endswith("| **recommended** |") and "| 4.25 | 0% |" in body["gptq-4b-g64"]
    assert body["rtn-4b-g32"].endswith("| qualifies, less compressed |")
    assert all(r.count(" | ") == 6 for r in rows)  # no cell broke the row
    summary = res.stdout.splitlines()[0]  # stdout is the markdown alone (progress goes to stderr)
    assert "gptq-4b-g64" in summary and "paper rules, 95% paired intervals" in summary
    both = CliRunner().invoke(main, [*args, "--markdown", "--json"])
    assert both.exit_code == 2 and "pass one of them" in both.output


def test_recommend_markdown_escapes_cache_text(stub_models, db_path) -> None:
    """Spec labels and dimension names come from the cache: a pipe, a newline or raw HTML in one stays in its cell."""
    from ctrust_tui.recommend import Candidate, Recommendation, recommend_markdown

    ids = _runs(stub_models, db_path, "none,gptq-4b-g64,rtn-4b-g32", broken=set())
    with open_store(db_path, readonly=True) as store:
        rec = recommend(store, ids[0], ids[1:], margins=MARGIN)
    evil = Candidate("x|y\n| <b>z</b>", 99, 4.0, 0.0, rec.candidates[0].comparisons)
    text = recommend_markdown(Recommendation(rec.base_run, rec.margins, rec.alpha, rec.rules, (evil,)))
    (row,) = [line for line in text.splitlines() if line.startswith("| x")]
    assert row.startswith("| x\\|y \\| &lt;b>z&lt;/b> | #99 |")
    assert "<b>" not in text


@pytest.mark.parametrize("args,message", [
    (("--compression", "gptq-4b-g64"), "at least two"),
    (("--compression", "none,gptq-4b-g64"), "at least two"),
    (("--compression", "gptq-4b-g64,bogus-9"), "unknown compression"),
    (("--compression", "gptq-4b-g64,rtn-4b-g32", "--margin", "-2"), "non-negative"),
    (("--compression", "gptq-4b-g64,rtn-4b-g32", "--margin", "x"), "not a number"),
    (("--compression", "gptq-4b-g64,rtn-4b-g32", "--dimensions", "ethics", "--margin", "toxicity=1"),
     "unknown dimension"),
])
def test_bad_recommend_input_is_one_line_exit_2_and_writes_nothing(tmp_path, stub_models, args, message) -> None:
    db = tmp_path / "new" / "cache.db"
    res = CliRunner().invoke(main, ["--db", str(db), "--models-dir", str(stub_models), "recommend", "stub-model",
                                    *args])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], res.output
    assert not db.exists() and not db.parent.exists()


def _fake_runners(monkeypatch, broken: set[str]) -> None:
    """Every Runner the CLI and the adaptive loop create generates with the fake backend
    (`broken` specs answer wrongly)."""
    import ctrust_tui.adaptive as adaptive_mod

    class FakeRunner(Runner):
        def __init__(self, cfg, emit, **kw):
            kw.pop("backend_factory", None)
            super().__init__(cfg, emit, backend_factory=_factory(broken), **kw)

    monkeypatch.setattr(runner_mod, "Runner", FakeRunner)
    monkeypatch.setattr(adaptive_mod, "Runner", FakeRunner)
    monkeypatch.setattr(cli, "_check_model", lambda model, models: None)


def test_adaptive_recommend_grows_one_run_per_spec_and_stops_early(stub_models, db_path, monkeypatch) -> None:
    _fake_runners(monkeypatch, broken={"gptq-3b-g64"})
    args = ["--db", str(db_path), "--models-dir", str(stub_models), "recommend", "stub-model",
            "--compression", "gptq-3b-g64,gptq-4b-g64", "--dimensions", ",".join(DIMS), "--profile", "quick",
            "--margin", "40", "--json", "--adaptive"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output[res.output.index("{"):])
    assert data["recommendation"] == ["gptq-4b-g64"] and data["rejected_more_compressed"] == ["gptq-3b-g64"]
    prompts = data["adaptive"]["prompts"]
    total = prompts["gptq-4b-g64"]["total"]
    assert total == sum(len(get_dimension(d).build_prompts(get_profile("quick"))) for d in DIMS)
    assert prompts["gptq-3b-g64"]["total"] == total
    # identical to the base: non-inferior, and all wrong: inferior, both at the second of four looks
    assert prompts["gptq-4b-g64"]["used"] <= total // 2 + 2
    assert prompts["gptq-3b-g64"]["used"] <= total // 2 + 2
    by = {c["spec"]: c for c in data["candidates"]}
    assert {d["noninferiority"]["verdict"] for d in by["gptq-3b-g64"]["dimensions"]} == {"inferior"}
    assert {d["noninferiority"]["verdict"] for d in by["gptq-4b-g64"]["dimensions"]} == {"non-inferior"}
    assert all("sequential look" in d["noninferiority"]["method"] for d in by["gptq-3b-g64"]["dimensions"])
    with open_store(db_path, readonly=True) as store:
        runs = store.runs()
        assert len(runs) == 3  # base + one growing run per spec, not one per round
        grown = next(r for r in runs if r.compression == "gptq-4b-g64")
        assert grown.settings["adaptive"] == "stratified-prefix"
        assert sum(len(store.judged(grown.id, d, "paper")) for d in DIMS) == prompts["gptq-4b-g64"]["used"]


def test_run_adaptive_stops_each_spec_early_against_the_base(stub_models, db_path, monkeypatch) -> None:
    _fake_runners(monkeypatch, broken={"gptq-3b-g64"})
    args = ["--db", str(db_path), "--models-dir", str(stub_models), "run", "--model", "stub-model",
            "--compression", "none,gptq-3b-g64,gptq-4b-g64", "--dimensions", ",".join(DIMS), "--profile", "quick",
            "--margin", "40", "--adaptive"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    total = sum(len(get_dimension(d).build_prompts(get_profile("quick"))) for d in DIMS)
    lines = {line.split(" ")[0]: line for line in res.output.splitlines() if "prompts (" in line}
    assert set(lines) == {"gptq-3b-g64", "gptq-4b-g64"}
    assert lines["gptq-3b-g64"].count("inferior at") == len(DIMS) and "non-inferior" not in lines["gptq-3b-g64"]
    assert lines["gptq-4b-g64"].count("non-inferior at") == len(DIMS)
    used = int(lines["gptq-4b-g64"].split(" prompts (")[0].rsplit(" of ", 1)[0].rsplit(" ", 1)[1])
    assert used <= total // 2 + 2  # decided at the second of four looks
    with open_store(db_path, readonly=True) as store:
        assert len(store.runs()) == 3  # base + one growing run per spec


@pytest.mark.parametrize(("args", "message"), [
    (["--compression", "gptq-3b-g64", "--adaptive"], "give both, e.g. --compression none,gptq-3b-g64"),
    (["--compression", "none", "--adaptive"], "give both"),
    (["--compression", "none,gptq-3b-g64", "--margin", "2"], "add --adaptive"),
    (["--compression", "none,gptq-3b-g64", "--adaptive", "--margin", "-1"], "margin"),
])
def test_bad_run_adaptive_input_is_one_line_exit_2(tmp_path, stub_models, args, message) -> None:
    db = tmp_path / "new" / "cache.db"
    res = CliRunner().invoke(main, ["--db", str(db), "--models-dir", str(stub_models), "run", "--model",
                                    "stub-model", *args])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], res.output
    assert not db.exists()
