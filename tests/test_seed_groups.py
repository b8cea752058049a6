"""`ctrust run --calib-seeds K`: one run per calibration seed, tagged as a group, pooled with the
two-level bootstrap; seed 0 keeps today's variant name; bad K or uncalibrated specs exit 2."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import FakeBackend

from ctrust_tui.cli import main
from ctrust_tui.compress.cache import variant_dir_name
from ctrust_tui.compress.spec import parse_spec, parse_specs
from ctrust_tui.compress.types import CalibrationConfig
from ctrust_tui.runner import RunConfig, Runner, calib_seed_configs, compression_label
from ctrust_tui.seed_groups import GROUP_KEY, calib_seeds, group_label, group_of, seed_group_reports
from ctrust_tui.store import open_store
from ctrust_tui.tables import score_table, seed_group_table

OPTIONS = ["I agree.", "I disagree.", "wrong", "not wrong", "yes", "no", "A", "positive"]


def seed_factory(flip: int):
    """Fake backends whose answers depend on the calibration seed for 1 prompt in `flip`."""

    def factory(model, spec, cfg, progress, cancel):
        s = cfg.calibration.seed

        def script(req):
            h = int(hashlib.sha256(req.prompt.encode()).hexdigest(), 16)
            return OPTIONS[(h + (s if h % flip == 0 else 0)) % len(OPTIONS)]

        return FakeBackend(script=script, compression=str(spec), fingerprint=f"fake-calib-{s}")

    return factory


def _run_group(stub_models: Path, db_path: Path, k: int, flip: int = 3, spec: str = "gptq-3b-g64") -> list[int]:
    cfg = RunConfig(model="stub-model", compressions=parse_specs(spec), dimensions=("ethics", "advglue"),
                    profile="smoke", db_path=db_path, models_dir=stub_models, limit=12,
                    calib_seeds=calib_seeds(0, k) if k > 1 else None)
    ids: list[int] = []
    for one in calib_seed_configs(cfg):
        ids += Runner(one, lambda e: None, backend_factory=seed_factory(flip)).execute()
    return ids


def test_seed_zero_keeps_todays_variant_name_and_label() -> None:
    spec = parse_spec("gptq-3b-g64")
    assert variant_dir_name("m", spec, CalibrationConfig(seed=0)) == "m--gptq-3b-g64"
    assert compression_label(spec, CalibrationConfig(seed=0)) == "gptq-3b-g64"
    assert variant_dir_name("m", spec, CalibrationConfig(seed=2)) == "m--gptq-3b-g64--c4-n32-l512-s2"
    assert compression_label(spec, CalibrationConfig(seed=2)) == "gptq-3b-g64@c4-n32-l512-s2"
    assert calib_seeds(4, 3) == (4, 5, 6)


def test_group_runs_share_an_id_and_a_plain_run_keeps_its_identity(stub_models: Path, db_path: Path) -> None:
    plain = _run_group(stub_models, db_path, 1)
    ids = _run_group(stub_models, db_path, 3)
    with open_store(db_path) as store:
        plain_run = store.run(plain[0])
        runs = [store.run(i) for i in ids]
    assert GROUP_KEY not in plain_run.settings and group_of(plain_run) is None  # as before this feature
    groups = [group_of(r) for r in runs]
    assert len({g["id"] for g in groups}) == 1 and [g["seed"] for g in groups] == [0, 1, 2]
    assert all(g["seeds"] == [0, 1, 2] for g in groups)
    assert [r.compression for r in runs] == ["gptq-3b-g64", "gptq-3b-g64@c4-n32-l512-s1", "gptq-3b-g64@c4-n32-l512-s2"]
    assert len({r.settings["model_fingerprint"] for r in runs}) == 3  # each seed's generations are cached apart
    assert plain[0] not in ids  # the group's seed-0 run is its own run (its generations come from the cache)
    assert group_label(runs[1]).endswith(" 2/3")
    assert _run_group(stub_models, db_path, 3) == ids  # the same command resumes the same runs


def test_pooled_report_and_tables(stub_models: Path, db_path: Path) -> None:
    ids = _run_group(stub_models, db_path, 3, flip=2)
    with open_store(db_path) as store:
        runs = [store.run(i) for i in ids]
        (report,) = seed_group_reports(store, runs, rules="robust", n_boot=200)
        (same,) = seed_group_reports(store, runs[:2] + runs[2:], rules="robust", n_boot=200)
        (part,) = seed_group_reports(store, runs[:2], rules="robust", n_boot=200)
        table = score_table(runs, store.scores(ids), show_status=True)
    assert report == same and report.seeds == (0, 1, 2) and report.run_ids == tuple(ids)
    assert report.compression == "gptq-3b-g64" and part.missing == (2,)
    by = {d.dimension: d for d in report.dimensions}
    assert set(by) == {"ethics", "advglue"}
    for d in by.values():
        assert d.n_seeds == 3 and d.n_prompts > 0
        if d.ci95 is not None:
            assert d.ci95[0] <= d.score <= d.ci95[1]
    assert any(d.seed_share and d.seed_share > 0 for d in by.values())  # the seeds answer differently
    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(seed_group_table(report, "robust"))
    console.print(table)
    text = console.export_text()
    assert "calibration seeds 0, 1, 2" in text and "seed share" in text and "calib seeds" in text


def test_identical_seeds_have_no_seed_share(stub_models: Path, db_path: Path) -> None:
    ids = _run_group(stub_models, db_path, 2, flip=10**9)  # answers never depend on the seed
    with open_store(db_path) as store:
        (report,) = seed_group_reports(store, [store.run(i) for i in ids], n_boot=100)
    for d in report.dimensions:
        assert d.seed_share in (0.0, None) and len(set(d.per_seed)) == 1


def test_runs_json_and_export_json_name_the_group(stub_models: Path, db_path: Path) -> None:
    ids = _run_group(stub_models, db_path, 2)
    out = CliRunner().invoke(main, ["runs", "--json", "--db", str(db_path)], catch_exceptions=False).output
    rows = {r["run_id"]: r for r in json.loads(out)}
    assert {rows[i]["calib_seed_group"]["seed"] for i in ids} == {0, 1}
    out = CliRunner().invoke(main, ["export", *map(str, ids), "--format", "json", "--db", str(db_path)],
                             catch_exceptions=False).output
    assert len({r["calib_seed_group"]["id"] for r in json.loads(out)}) == 1


@pytest.mark.parametrize("args, message", [
    (["--compression", "rtn-4b-g128", "--calib-seeds", "3"], "rtn-4b-g128 uses none"),
    (["--compression", "none,gptq-4b-g128", "--calib-seeds", "2"], "none uses none"),
    (["--compression", "bnb-nf4", "--calib-seeds", "2"], "bnb-nf4 uses none"),
    (["--compression", "magnitude-0.5", "--calib-seeds", "2"], "magnitude-0.5 uses none"),
    (["--compression", "gptq-4b-g128", "--calib-seeds", "0"], "--calib-seeds must be between 1 and 20"),
    (["--compression", "gptq-4b-g128", "--calib-seeds", "21"], "--calib-seeds must be between 1 and 20"),
])
def test_bad_calib_seeds_is_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    res = CliRunner().invoke(main, ["run", "--db", str(tmp_path / "c.db"), "--models-dir", str(tmp_path), *args])
    assert res.exit_code == 2, res.output
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and message in lines[0], res.output
    assert not (tmp_path / "c.db").exists()


def test_real_tiny_model_two_calibration_seeds_end_to_end(tmp_path: Path) -> None:
    """GPTQ on a tiny random Llama with two calibration seeds: two variant folders with different
    weights, two runs of one group, the pooled table; the same command again resumes them."""
    from tiny_models import WORDS, save_tiny_llama

    models, db = tmp_path / "models", tmp_path / "cache.db"
    save_tiny_llama(models / "tiny")
    calib = tmp_path / "calib.txt"
    calib.write_text(" ".join(WORDS * 12))
    args = ["run", "--model", "tiny", "--compression", "gptq-4b-g32", "--calib-seeds", "2", "--dimensions", "advglue",
            "--limit", "3", "--device", "cpu", "--calibration", str(calib), "--nsamples", "2", "--seqlen", "16",
            "--db", str(db), "--models-dir", str(models)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "calibration seeds 0, 1" in res.output and "seed share" in res.output
    folders = sorted(p.name for p in models.iterdir() if p.name.startswith("tiny--"))
    assert folders == ["tiny--gptq-4b-g32--custom-n2-l16-s0", "tiny--gptq-4b-g32--custom-n2-l16-s1"]
    weights = [(models / f / "model.safetensors").read_bytes() for f in folders]
    assert weights[0] != weights[1]  # another calibration draw, other weights
    with open_store(db) as store:
        runs = store.runs()
    assert len(runs) == 2 and len({group_of(r)["id"] for r in runs}) == 1
    assert len({r.settings["model_fingerprint"] for r in runs}) == 2
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    with open_store(db) as store:
        assert len(store.runs()) == 2
