"""`ctrust compare --margin`: verdicts in the table and JSON; bad input is one line and exit 2."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import FakeBackend, fake_factory

from ctrust_tui.cli import main
from ctrust_tui.compress.spec import parse_specs
from ctrust_tui.runner import RunConfig, Runner
from ctrust_tui.trust.noninferiority import VERDICTS

DIMS = ("advglue", "privacy", "stereotype")


def _keyed(req) -> str:
    """Depends on the compression (via the generation key): the runs disagree on some prompts."""
    h = int(hashlib.sha256(req.key.encode()).hexdigest(), 16)
    return ["yes", "no", "A", "positive", "negative", "I'm sorry, I cannot help with that."][h % 6]


def _runs(models: Path, db: Path, specs: str = "none,rtn-4b-g32", model: str = "stub-model") -> list[int]:
    cfg = RunConfig(model=model, compressions=parse_specs(specs), dimensions=DIMS, profile="smoke",
                    db_path=db, models_dir=models, limit=6)
    backend = FakeBackend(script=_keyed, fingerprint=f"fake-{model}")
    return Runner(cfg, lambda e: None, backend_factory=fake_factory(backend)).execute()


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_compare_gives_every_dimension_a_verdict(stub_models, db_path):
    a, b = _runs(stub_models, db_path)
    res = _invoke("--db", str(db_path), "compare", str(a), str(b), "--margin", "advglue=5,default=2", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["margin"] == {"default": 2.0, "advglue": 5.0} and data["alpha"] == 0.05
    by = {d["dimension"]: d for d in data["dimensions"]}
    assert set(by) == set(DIMS)
    for dim, d in by.items():
        ni = d["noninferiority"]
        assert ni["verdict"] in VERDICTS and ni["margin"] == (5.0 if dim == "advglue" else 2.0)
        assert d["n_shared"] == 6 and d["ci95"] is not None and d["ci95"][0] < d["delta"] < d["ci95"][1]
        # 6 prompts cannot show that a variant is within 2-5 points of its base
        assert ni["verdict"] != "non-inferior"
        if ni["verdict"] == "inconclusive":
            assert ni["further_prompts"] is None or ni["further_prompts"] > 0
    res = _invoke("--db", str(db_path), "compare", str(a), str(b), "--margin", "2", "--dimensions", "privacy")
    assert res.exit_code == 0 and "verdict" in res.output and "margin 2 points" in res.output
    assert "AdvGLUE" not in res.output and "advglue" not in res.output


def test_identical_runs_are_non_inferior_only_with_enough_prompts(stub_models, db_path):
    (a,) = _runs(stub_models, db_path, "none")
    data = json.loads(_invoke("--db", str(db_path), "compare", str(a), str(a), "--margin", "50", "--json").output)
    assert {d["noninferiority"]["verdict"] for d in data["dimensions"]} == {"non-inferior"}
    data = json.loads(_invoke("--db", str(db_path), "compare", str(a), str(a), "--margin", "5", "--json").output)
    assert {d["noninferiority"]["verdict"] for d in data["dimensions"]} == {"inconclusive"}
    # no flip among 6 prompts: about 150 prompts would show the variant within 5 points
    assert all(100 < d["noninferiority"]["further_prompts"] < 200 for d in data["dimensions"])
    data = json.loads(_invoke("--db", str(db_path), "compare", str(a), str(a), "--margin", "1", "--json").output)
    assert all(d["noninferiority"]["further_prompts"] is None and "100x" in d["noninferiority"]["reason"]
               for d in data["dimensions"])


@pytest.mark.parametrize("args,message", [
    (("--margin", "-1"), "non-negative"),
    (("--margin", "two"), "not a number"),
    (("--margin", "toxicity=x"), "not a number"),
    (("--margin", "toxicity=1"), "not among the compared dimensions"),
    (("--margin", "nosuch=1"), "unknown dimension"),
    (("--dimensions", "toxicity"), "not in both runs"),
    (("--dimensions", "nosuch"), "unknown dimension"),
    (("--alpha", "0.9"), "--alpha"),
    (("--rules", "lenient"), "unknown rule set"),
])
def test_bad_compare_input_is_one_line_and_exit_2(stub_models, db_path, args, message):
    a, b = _runs(stub_models, db_path)
    res = _invoke("--db", str(db_path), "compare", str(a), str(b), *args)
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], res.output


def test_runs_of_different_models_are_refused(stub_models, db_path):
    other = stub_models / "other-model"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (a,) = _runs(stub_models, db_path, "none")
    (b,) = _runs(stub_models, db_path, "none", model="other-model")
    res = _invoke("--db", str(db_path), "compare", str(a), str(b), "--margin", "2")
    assert res.exit_code == 2 and "different models" in res.output


def test_export_json_carries_an_auditable_decision_record(stub_models, db_path, tmp_path):
    weights = stub_models / "stub-model" / "model.safetensors"
    weights.write_bytes(b"not really a tensor file, but bytes to hash" * 100)
    a, b = _runs(stub_models, db_path)
    out = tmp_path / "export.json"
    res = _invoke("--db", str(db_path), "export", str(a), str(b), "--format", "json", "--margin", "privacy=3,default=5",
                  "--out", str(out))
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert "decision" not in data[0]  # the dense base itself has nothing to decide
    rec = data[1]["decision"]
    assert rec["base_run"] == a and rec["variant_run"] == b and rec["compression"] == "rtn-4b-g32"
    assert rec["margin"] == {"default": 5.0, "privacy": 3.0} and rec["alpha"] == 0.05 and rec["rules"] == "paper@1"
    assert set(rec["dimensions"]) == set(DIMS)
    for dim, d in rec["dimensions"].items():
        assert d["verdict"] in VERDICTS and d["margin"] == (3.0 if dim == "privacy" else 5.0) and d["n"] == 6
        assert d["scorer"] and dim in d["scorer"] and "paper@1" in d["scorer"]
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert rec["variant_weights"]["sha256"] == digest and rec["variant_weights"]["files"] == {"model.safetensors": digest}
    # the same verdicts come back from the cache offline: the record can be re-checked
    again = json.loads(_invoke("--db", str(db_path), "compare", str(a), str(b), "--margin", "privacy=3,default=5",
                               "--json").output)
    assert {d["dimension"]: d["noninferiority"]["verdict"] for d in again["dimensions"]} == \
        {k: v["verdict"] for k, v in rec["dimensions"].items()}
    res = _invoke("--db", str(db_path), "export", str(a), "--format", "json", "--margin", "-3")
    assert res.exit_code == 2 and "non-negative" in res.output
