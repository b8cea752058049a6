"""Calibration precision: which forwards run in bf16, that only they do, and how it is recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from test_api import TINY_CAL, make_base
from tiny_llama import ids, tiny

from ctrust_tui.cli import main
from ctrust_tui.compress.api import compress_model
from ctrust_tui.compress.cache import variant_dir_name
from ctrust_tui.compress.layers import find_linears
from ctrust_tui.compress.methods import apply_method
from ctrust_tui.compress.precision import forward_dtype
from ctrust_tui.compress.spec import parse_spec
from ctrust_tui.compress.types import CalibrationConfig
from ctrust_tui.errors import CtrustError


@pytest.mark.parametrize(("precision", "device", "param", "native", "want"), [
    ("auto", "cpu", torch.float32, True, torch.bfloat16),  # bf16 measured faster here
    ("auto", "cpu", torch.float32, False, None),  # measured slower (emulated, or no AMX)
    ("bf16", "cpu", torch.float32, False, torch.bfloat16),
    ("fp32", "cpu", torch.float32, True, None),
    ("auto", "cpu", torch.bfloat16, True, None),  # a bf16 model already runs in bf16
    ("auto", "cuda", torch.float32, True, None),
])
def test_forward_dtype(precision, device, param, native, want):
    assert forward_dtype(precision, device, param, bf16_faster=native) == want


def test_unknown_precision_names_the_choices():
    with pytest.raises(CtrustError, match="auto, fp32, bf16"):
        forward_dtype("fp8", "cpu", torch.float32)


def _linear_output_dtypes(model) -> tuple[set, list]:
    seen: set = set()
    handles = [m.register_forward_hook(lambda mod, a, out: seen.add(out.dtype))
               for layer in model.model.layers for m in find_linears(layer).values()]
    return seen, handles


@pytest.mark.parametrize("spec", ["wanda-0.5", "sparsegpt-2:4", "gptq-4b-g16"])  # hooked and staged paths
def test_bf16_runs_the_calibration_forwards_and_nothing_else_in_bf16(spec):
    results, errors = {}, {}
    for precision in ("fp32", "bf16"):
        model = tiny()
        seen, handles = _linear_output_dtypes(model)
        stats = apply_method(model, parse_spec(spec), ids(), device="cpu", precision=precision)
        for h in handles:
            h.remove()
        assert not torch.is_autocast_enabled("cpu")
        assert stats["forward_dtype"] == {"fp32": "float32", "bf16": "bfloat16"}[precision]
        assert seen == ({torch.float32} if precision == "fp32" else {torch.bfloat16})
        assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay float32
        results[precision] = {k: v.clone() for k, v in model.state_dict().items()}
        errors[precision] = stats["error"]
    if spec.startswith("gptq"):  # the same quality: the OBS loss on the calibration inputs
        assert 0.8 < errors["bf16"] / errors["fp32"] < 1.25
    for name, w in results["bf16"].items():
        ref = results["fp32"][name]
        if "proj" in name and spec.startswith("gptq"):
            continue  # one near-tie rounding the other way moves every later column: compared below
        if "proj" in name:
            same_zeros = ((w == 0) == (ref == 0)).float().mean()
            assert same_zeros > 0.9, name  # bf16 inputs move a few near-ties, no more
            assert (w == 0).float().mean() == (ref == 0).float().mean()  # exactly the same sparsity
        else:
            assert torch.equal(w, ref), name  # embeddings and norms untouched


def test_fp32_precision_is_the_default_of_apply_method():
    a, b = tiny(), tiny()
    apply_method(a, parse_spec("sparsegpt-0.5"), ids(), device="cpu")
    apply_method(b, parse_spec("sparsegpt-0.5"), ids(), device="cpu", precision="fp32")
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), k


def test_precision_is_part_of_the_calibration_identity():
    auto, fp32 = CalibrationConfig(), CalibrationConfig(precision="fp32")
    assert auto.tag == "c4-n32-l512-s0" and fp32.tag == "c4-n32-l512-s0-fp32"
    assert fp32.to_dict()["precision"] == "fp32"
    spec = parse_spec("wanda-0.5")
    assert variant_dir_name("m", spec, auto) == "m--wanda-0.5"
    assert variant_dir_name("m", spec, fp32) == "m--wanda-0.5--c4-n32-l512-s0-fp32"


def test_compression_json_records_the_precision_and_bad_precision_writes_nothing(tmp_path: Path):
    base = make_base(tmp_path / "src")
    models = tmp_path / "models"
    cal = CalibrationConfig(TINY_CAL.source, TINY_CAL.nsamples, TINY_CAL.seqlen, TINY_CAL.seed, "bf16")
    out = compress_model(base, parse_spec("wanda-0.5"), base_name="tiny", models_dir=models, calibration=cal,
                         device="cpu", measure_perplexity=False)
    meta = json.loads((out.path / "compression.json").read_text())
    assert meta["calibration"]["precision"] == "bf16" and meta["calibration"]["forward_dtype"] == "bfloat16"
    assert meta["method"]["stats"]["forward_dtype"] == "bfloat16"
    again = compress_model(base, parse_spec("wanda-0.5"), base_name="tiny", models_dir=models, calibration=cal,
                           device="cpu", measure_perplexity=False)
    assert again.reused
    before = sorted(p.name for p in models.iterdir())
    with pytest.raises(CtrustError, match="auto, fp32, bf16"):  # refused when the config is made
        bad = CalibrationConfig(TINY_CAL.source, TINY_CAL.nsamples, TINY_CAL.seqlen, TINY_CAL.seed, "fp8")
        compress_model(base, parse_spec("wanda-0.5"), base_name="tiny", models_dir=models, calibration=bad,
                       device="cpu")
    assert sorted(p.name for p in models.iterdir()) == before


def test_cli_takes_the_precision_and_refuses_unknown_values(tmp_path: Path):
    base = make_base(tmp_path / "src")
    models = tmp_path / "models"
    models.mkdir()
    args = ["--models-dir", str(models), "compress", str(base), "wanda-0.5", "--nsamples", "4", "--seqlen", "32"]
    res = CliRunner().invoke(main, [*args, "--calib-precision", "fp32"])
    assert res.exit_code == 0, res.output
    out = Path(res.output.strip().splitlines()[-1])
    meta = json.loads((out / "compression.json").read_text())
    assert out.name.endswith("-fp32") and meta["calibration"]["forward_dtype"] == "float32"
    res = CliRunner().invoke(main, [*args, "--calib-precision", "fp8"])
    assert res.exit_code == 2 and "auto" in res.output and "bf16" in res.output


def test_bf16_gptq_keeps_the_one_forward_staged_path(monkeypatch):
    """Under autocast the staged chain must still be recognised as the layer's own forward,
    or GPTQ silently falls back to ~1.8 forwards per layer."""
    from ctrust_tui.compress import staged as S

    verdicts = []
    original = S.StagedLayer.matches_layer

    def spy(self, h, amp=None):
        verdicts.append(original(self, h, amp))
        return verdicts[-1]

    monkeypatch.setattr(S.StagedLayer, "matches_layer", spy)
    apply_method(tiny(), parse_spec("gptq-4b-g16"), ids(), device="cpu", precision="bf16")
    assert verdicts == [True]
