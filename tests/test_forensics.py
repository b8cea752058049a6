"""Flip forensics: divergence index, teacher-forced top-5 against a manual forward, the cache, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from forensics_fixtures import SCRIPT, VARIANT, build_forensics_db

from ctrust_tui import forensics as fx
from ctrust_tui.cli import main
from ctrust_tui.compare import compare_runs
from ctrust_tui.engine import forensics as engine_fx
from ctrust_tui.engine.forensics import encode, first_divergence, next_tokens
from ctrust_tui.engine.loader import load_model
from ctrust_tui.errors import CtrustError
from ctrust_tui.store import open_store
from ctrust_tui.trust.chat import render_plain


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, list[int]]:
    return build_forensics_db(tmp_path_factory.mktemp("forensics"))


@pytest.fixture
def fresh(built, tmp_path) -> tuple[Path, Path, list[int]]:
    """A private copy of the cache (the models are read-only inputs and shared)."""
    db, models, ids = built
    shutil.copy(db, tmp_path / "cache.db")
    return tmp_path / "cache.db", models, ids


def _flips(db: Path, ids: list[int]) -> list[fx.Flip]:
    with open_store(db, readonly=True) as s:
        comps = compare_runs(s, ids[0], ids[1], rules="paper")
        return fx.list_flips(s, ids[0], ids[1], comps, rules="paper")


def _counting(monkeypatch):
    """Counters of model loads and teacher-forced forwards, and the counting loader to pass in."""
    calls = {"load": 0, "forward": 0}
    real_next = engine_fx.next_tokens

    def counted_next(*a, **k):
        calls["forward"] += 1
        return real_next(*a, **k)

    def counted_load(path, spec, device):
        calls["load"] += 1
        return load_model(path, spec, device)

    monkeypatch.setattr(engine_fx, "next_tokens", counted_next)
    return calls, counted_load


@pytest.mark.parametrize(("a", "b", "want"), [
    ([1, 2, 3], [1, 2, 3], None), ([1, 2, 3], [1, 5, 3], 1), ([4], [5], 0), ([1, 2], [1, 2, 3], 2), ([], [7], 0),
])
def test_first_divergence(a, b, want):
    assert first_divergence(a, b) == want


def test_next_tokens_matches_a_manual_forward(built):
    _, models, _ = built
    loaded = load_model(models / "tiny", None, "cpu")
    ids = encode(loaded.tokenizer, "the cat sat on")
    got = next_tokens(loaded.model, loaded.tokenizer, loaded.device, ids, probes=[ids[0]])
    with torch.no_grad():
        probs = loaded.model(torch.tensor([ids])).logits[0, -1].float().softmax(-1)
    want = probs.topk(5)
    assert [t.id for t in got.top] == want.indices.tolist()
    assert [t.p for t in got.top] == pytest.approx(want.values.tolist(), abs=1e-6)
    assert sum(t.p for t in got.top) <= 1.0 + 1e-6 and all(0 <= t.p <= 1 for t in got.top)
    assert got.probes[ids[0]] == pytest.approx(float(probs[ids[0]]), abs=1e-6)
    assert got.top[0].text == loaded.tokenizer.decode([got.top[0].id])


def test_forensics_of_each_case_then_served_from_the_cache(fresh, monkeypatch):
    db, models, ids = fresh
    flips = _flips(db, ids)
    assert len(flips) == 3
    calls, load = _counting(monkeypatch)
    out = fx.compute_forensics(db, models, ids[0], ids[1], flips, device="cpu", load=load)
    assert calls["load"] == 2  # each model once for the whole batch
    assert calls["forward"] == 4  # two diverged prompts x two models; identical outputs need none
    with open_store(db, readonly=True) as s:
        outputs = {f.prompt_key: (s.run_generations(ids[0], f.prompt_key)[0].output,
                                  s.run_generations(ids[1], f.prompt_key)[0].output) for f in flips}
    by_case = {next(i for i, pair in SCRIPT.items() if pair == outputs[k]): out[k] for k in out}
    assert by_case[1]["status"] == "identical" and "not from generation" in by_case[1]["note"]

    parted = by_case[0]
    assert parted["status"] == "diverged" and parted["position"] == 2
    assert (parted["base_token"], parted["variant_token"]) == ("sat", "ran")
    # the base's top-5 is a manual forward of the base over prompt + "the cat"
    base = load_model(models / "tiny", None, "cpu")
    flip0 = next(f for f in flips if outputs[f.prompt_key] == SCRIPT[0])
    ctx = encode(base.tokenizer, render_plain(flip0.record.messages)) + encode(base.tokenizer, "the cat")
    with torch.no_grad():
        probs = base.model(torch.tensor([ctx])).logits[0, -1].float().softmax(-1)
    top = probs.topk(5)
    assert [e["p"] for e in parted["base_top5"]] == pytest.approx(top.values.tolist(), abs=1e-6)
    assert [e["token"] for e in parted["base_top5"]] == [base.tokenizer.decode([i]) for i in top.indices.tolist()]
    sat, ran = base.tokenizer.convert_tokens_to_ids(["sat", "ran"])
    assert parted["base_p"] == pytest.approx({"own": float(probs[sat]), "other": float(probs[ran])}, abs=1e-6)
    assert parted["base_margin"] == pytest.approx(float(probs[sat] - probs[ran]), abs=1e-6)
    for side in ("base", "variant"):
        assert len(parted[f"{side}_top5"]) == 5 and sum(e["p"] for e in parted[f"{side}_top5"]) <= 1 + 1e-6
    assert parted["variant_top5"] != parted["base_top5"]  # the variant's weights differ
    want = "near-tie" if parted["base_margin"] < fx.NEAR_TIE else "change of belief"
    assert parted["reading"] == want
    assert not parted["sampled"]

    prefix = by_case[2]  # "no wrong" vs "no": the variant ended where the base went on
    assert prefix["position"] == 1 and prefix["variant_ended"] and not prefix["base_ended"]
    assert prefix["base_token"] == "wrong" and prefix["variant_token"] == "<eos>"

    # a second request is served from the cache: no model loaded, no forward
    calls["load"] = calls["forward"] = 0
    again = fx.compute_forensics(db, models, ids[0], ids[1], flips, device="cpu", load=load)
    assert again == json.loads(json.dumps(out)) and calls["load"] == 0 and calls["forward"] == 0
    with open_store(db, readonly=True) as s:
        assert all(v is not None for v in fx.cached_forensics(s, ids[0], ids[1], flips).values())


def test_missing_variant_folder_is_one_clear_error(fresh, tmp_path):
    db, models, ids = fresh
    moved = tmp_path / "models"
    shutil.copytree(models, moved)
    shutil.rmtree(moved / VARIANT)
    with open_store(db) as s:  # the recorded path points at the removed folder
        s.conn.execute("UPDATE models SET path = ? WHERE path LIKE ?", (str(moved / VARIANT), f"%{VARIANT}"))
        s.conn.commit()
    with pytest.raises(CtrustError, match=r"weights of run #2 .* are not in .*recreate it"):
        fx.compute_forensics(db, moved, ids[0], ids[1], _flips(db, ids), device="cpu")
    res = CliRunner().invoke(main, ["--db", str(db), "--models-dir", str(moved), "compare", str(ids[0]), str(ids[1]),
                                    "--forensics", "--device", "cpu", "--json"])
    assert res.exit_code == 2 and "are not in" in res.output and "Traceback" not in res.output


def test_a_variant_recorded_elsewhere_is_found_in_the_models_dir_by_fingerprint(fresh, tmp_path):
    db, models, ids = fresh
    with open_store(db) as s:
        s.conn.execute("UPDATE models SET path = '/nonexistent/x'")
        s.conn.commit()
        run = s.run(ids[1])
        assert fx.model_folder(s, run, models) == models / VARIANT


def test_cli_flips_json_shape(fresh):
    db, models, ids = fresh
    args = ["--db", str(db), "--models-dir", str(models), "compare", str(ids[0]), str(ids[1]), "--json"]
    res = CliRunner().invoke(main, [*args, "--flips"])
    assert res.exit_code == 0, res.output
    flips = json.loads(res.output)["flips"]
    assert len(flips) == 3 and all(f["forensics"] is None for f in flips)  # not computed yet: no model loaded
    assert {"dimension", "record_id", "base_verdict", "variant_verdict"} <= set(flips[0])
    res = CliRunner().invoke(main, [*args, "--forensics", "--device", "cpu", "--limit", "2"])
    assert res.exit_code == 0, res.output
    flips = json.loads(res.output)["flips"]
    assert len(flips) == 2  # --limit caps the flips per dimension
    for f in flips:
        fz = f["forensics"]
        assert fz["status"] in ("diverged", "identical")
        if fz["status"] == "diverged":
            assert {"position", "base_token", "variant_token", "base_top5", "variant_top5", "base_margin",
                    "variant_margin", "reading"} <= set(fz)
            assert set(fz["base_top5"][0]) == {"token", "p"}
    # the cached ones now show without --forensics, from a read-only open
    res = CliRunner().invoke(main, [*args, "--flips"])
    shown = json.loads(res.output)["flips"]
    assert sum(f["forensics"] is not None for f in shown) == 2


def test_cli_flips_table_is_plain_text(fresh):
    db, models, ids = fresh
    res = CliRunner().invoke(main, ["--db", str(db), "--models-dir", str(models), "compare", str(ids[0]), str(ids[1]),
                                    "--forensics", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "flipped prompts" in res.output and ("near-tie" in res.output or "change of belief" in res.output)


@pytest.mark.parametrize(("extra", "message"), [
    (["--limit", "0"], "--limit"),
    (["--limit", "-3"], "--limit"),
    (["--forensics", "--device", "tpu9"], "tpu9"),
])
def test_cli_bad_flip_options_exit_2(fresh, extra, message):
    db, models, ids = fresh
    res = CliRunner().invoke(main, ["--db", str(db), "compare", str(ids[0]), str(ids[1]), "--flips", *extra])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_cli_unknown_run_exit_2(fresh):
    db, models, ids = fresh
    res = CliRunner().invoke(main, ["--db", str(db), "compare", str(ids[0]), "99", "--flips"])
    assert res.exit_code == 2 and "no run #99" in res.output and "Traceback" not in res.output
