"""AWQ on tiny random Llama models: better than RTN, weights on the grid, scale folding exact."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from ctrust_tui.compress.awq import (
    AWQConfig,
    _fold_scale,
    apply_awq,
    awq_layer,
    pseudo_quantize,
    quantize_awq,
)
from ctrust_tui.compress.grid import recover_grid
from ctrust_tui.compress.layers import capture_first_layer_inputs
from ctrust_tui.compress.spec import parse_spec
from ctrust_tui.errors import Cancelled, CtrustError

GROUP = 32


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny matrices: one thread is much faster (and immune to a busy machine's oversubscription)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_model(kv_heads: int = 2, seed: int = 0, outliers: bool = True) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=kv_heads, vocab_size=256)
    model = LlamaForCausalLM(cfg).eval()
    if outliers:  # real LLMs have a few large activation channels: that is what AWQ exploits
        with torch.no_grad():
            for layer in model.model.layers:
                layer.input_layernorm.weight[:4] *= 20
                layer.post_attention_layernorm.weight[5:9] *= 20
    return model


def calib(n: int = 8, seq: int = 64, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, seq), generator=g)


def rtn_layer(layer, bits):
    out = copy.deepcopy(layer)
    for mod in out.modules():
        if isinstance(mod, torch.nn.Linear):
            mod.weight.data = pseudo_quantize(mod.weight.data, bits, GROUP)
    return out


@pytest.mark.parametrize("bits", [3, 4])
def test_awq_layer_output_error_below_rtn(bits):
    model = tiny_model()
    inps, kw = capture_first_layer_inputs(model, calib(), "cpu")
    for layer in model.model.layers:
        with torch.no_grad():
            ref = layer(inps, **kw)
            rtn_err = (rtn_layer(layer, bits)(inps, **kw) - ref).pow(2).mean().item()
            awq = copy.deepcopy(layer)
            outs, info = awq_layer(awq, inps, kw, bits, GROUP, AWQConfig())
            awq_err = (awq(inps, **kw) - ref).pow(2).mean().item()
        assert torch.equal(outs, ref)  # next layer gets the float outputs, as the reference
        assert awq_err < rtn_err, (bits, awq_err, rtn_err, info)
        inps = ref


def test_stored_weights_lie_on_the_grid_and_scales_live_in_the_norms():
    model = tiny_model()
    norms_before = [layer.input_layernorm.weight.detach().clone() for layer in model.model.layers]
    bits = 3
    stats = quantize_awq(model, calib(), bits, GROUP, device="cpu")
    for i, layer in enumerate(model.model.layers):
        for name, mod in layer.named_modules():
            if isinstance(mod, torch.nn.Linear):
                groups = mod.weight.detach().reshape(-1, GROUP)
                levels = max(len(torch.unique(g)) for g in groups)
                assert levels <= 2**bits, (i, name, levels)
        # the 1/s of the q/k/v scaling was folded into the RMSNorm weight
        assert not torch.allclose(layer.input_layernorm.weight, norms_before[i])
    assert stats["method"] == "awq" and stats["zero_point"] is True
    assert set(stats["layers"]["0"]["ratios"]) == {"qkv", "gate_up", "down"}  # GQA: no v->o pair


def test_scale_folding_keeps_the_float_function():
    model = tiny_model(kv_heads=4)
    inps, kw = capture_first_layer_inputs(model, calib(4, 32), "cpu")
    layer = model.model.layers[0]
    with torch.no_grad():
        ref = layer(inps, **kw)
        g = torch.Generator().manual_seed(3)
        a, m = layer.self_attn, layer.mlp
        _fold_scale(layer.input_layernorm, [a.q_proj, a.k_proj, a.v_proj], torch.rand(64, generator=g) + 0.5)
        _fold_scale(a.v_proj, [a.o_proj], torch.rand(64, generator=g) + 0.5)
        _fold_scale(layer.post_attention_layernorm, [m.gate_proj, m.up_proj], torch.rand(64, generator=g) + 0.5)
        _fold_scale(m.up_proj, [m.down_proj], torch.rand(128, generator=g) + 0.5)
        out = layer(inps, **kw)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_mha_scales_v_into_o_gqa_skips_it():
    model = tiny_model(kv_heads=4)
    stats = quantize_awq(model, calib(4, 32), 4, GROUP, device="cpu")
    assert "o" in stats["layers"]["0"]["ratios"]
    gqa = quantize_awq(tiny_model(kv_heads=2), calib(4, 32), 4, GROUP, device="cpu")
    assert "o" not in gqa["layers"]["0"]["ratios"]
    assert any("GQA" in s for s in gqa["layers"]["0"]["skipped"])


def test_awq_defaults_to_a_zero_point_and_sym_is_one_token_away():
    a, b, c = tiny_model(), tiny_model(), tiny_model()
    ids = calib(4, 32)
    sa = apply_awq(a, parse_spec("awq-4b-g32"), ids, device="cpu")
    apply_awq(b, parse_spec("awq-4b-g32-asym"), ids, device="cpu")
    sc = apply_awq(c, parse_spec("awq-4b-g32-sym"), ids, device="cpu")
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert sa["zero_point"] is True and sa["spec"] == "awq-4b-g32"
    assert sc["zero_point"] is False and sc["spec"] == "awq-4b-g32-sym"
    # asymmetric grid: a group's levels are not symmetric around zero
    w = a.model.layers[0].mlp.down_proj.weight.detach().reshape(-1, GROUP)[0]
    lv = torch.unique(w)
    assert not torch.allclose(lv.max(), -lv.min())
    # symmetric grid: every weight is exactly scale * k with k in [-8, 7] (grid.recover_grid checks it)
    wc = c.model.layers[0].mlp.down_proj.weight.detach()
    assert not torch.equal(wc, a.model.layers[0].mlp.down_proj.weight.detach())
    grid = recover_grid(wc, 4, GROUP, sym=True)
    assert int(grid.zero.abs().max()) == 0 and grid.codes.min() >= -8 and grid.codes.max() <= 7


def test_pseudo_quantize_levels_and_shape():
    w = torch.randn(16, 128, dtype=torch.float64)
    q = pseudo_quantize(w, 3, 64)
    assert q.shape == w.shape and q.dtype == w.dtype
    for g in q.reshape(-1, 64):
        assert len(torch.unique(g)) <= 8
    pc = pseudo_quantize(w, 4, -1)
    assert max(len(torch.unique(r)) for r in pc) <= 16
    with pytest.raises(CtrustError):
        pseudo_quantize(torch.randn(4, 48), 4, 32)


def test_cancel_and_bad_input():
    model = tiny_model()
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(Cancelled):
        quantize_awq(model, calib(4, 32), 4, GROUP, device="cpu", cancel=cancel)
    with pytest.raises(CtrustError):
        apply_awq(tiny_model(), parse_spec("awq-4b-g32"), None, device="cpu")
    with pytest.raises(CtrustError):
        apply_awq(tiny_model(), parse_spec("gptq-4b-g32"), calib(2, 16), device="cpu")


def test_progress_events_per_layer():
    events = []
    quantize_awq(tiny_model(), calib(4, 32), 4, GROUP, device="cpu", progress=events.append, label="awq-4b-g32")
    layer_events = [e for e in events if e.step == "awq"]
    assert [e.layer for e in layer_events] == [1, 2]
    assert all(e.n_layers == 2 and e.spec == "awq-4b-g32" for e in events)
