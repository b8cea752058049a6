import pytest
import torch
from tiny_llama import ids, tiny
from transformers import GPT2Config, GPT2LMHeadModel

import ctrust_tui.compress.layers as L
from ctrust_tui.compress.gptq import HessianCollector
from ctrust_tui.compress.methods import apply_method
from ctrust_tui.compress.rtn import rtn_compress
from ctrust_tui.compress.spec import parse_spec
from ctrust_tui.errors import Cancelled, CtrustError


def test_unsupported_architecture_is_named():
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64))
    with pytest.raises(CtrustError, match="GPT2LMHeadModel"):
        L.get_decoder_layers(gpt2)


def test_capture_gives_embeddings_and_cache_free_kwargs():
    model = tiny()
    hidden, kwargs = L.capture_first_layer_inputs(model, ids(), "cpu", batch=3)
    assert torch.equal(hidden, model.model.embed_tokens(ids()))
    assert kwargs["use_cache"] is False
    assert not any(k in kwargs for k in ("past_key_values", "cache", "past_key_value"))
    cos, _sin = kwargs["position_embeddings"]
    assert cos.shape[0] == 1 and cos.shape[1] == 32
    # running the layers on the captured inputs reproduces the model's hidden states
    with torch.no_grad():
        ref = model(ids(), output_hidden_states=True).hidden_states
        h0 = model.model.layers[0](hidden, **kwargs)
        h1 = model.model.norm(model.model.layers[1](h0, **kwargs))
    assert torch.allclose(h0, ref[1], atol=1e-5) and torch.allclose(h1, ref[2], atol=1e-5)


def _naive_true_sequential(model, calib):
    """The reference loop: each group's inputs from a full forward of the partly quantized model."""
    Hs = {}
    for i, layer in enumerate(model.model.layers):
        lin = L.find_linears(layer)
        for group in L.sequential_groups(list(lin), True):
            sums, hs = {}, []
            for name in group:
                def hook(m, args, name=name, sums=sums):
                    x = args[0].reshape(-1, args[0].shape[-1]).float()
                    sums[name] = sums.get(name, 0) + x.t() @ x
                hs.append(lin[name].register_forward_pre_hook(hook))
            with torch.no_grad():
                model(calib)
            for h in hs:
                h.remove()
            for name in group:
                Hs[f"{i}.{name}"] = sums[name]
                rtn_compress(lin[name], 3, 16, True)
    return Hs


@pytest.mark.parametrize(("staged", "budget"), [
    (True, L.CORRECTION_BUDGET_BYTES),  # one staged forward per layer (staged.py)
    (False, L.CORRECTION_BUDGET_BYTES),  # hooked passes, output fix-up shortcut on
    (False, 0),  # hooked passes, outputs recomputed by a forward
])
def test_true_sequential_engine_matches_the_naive_loop(monkeypatch, staged, budget):
    monkeypatch.setattr(L, "CORRECTION_BUDGET_BYTES", budget)
    naive_model = tiny()
    want = _naive_true_sequential(naive_model, ids())
    got = {}

    def compress(i, name, mod, c):
        got[f"{i}.{name}"] = c.hessian() * c.nsamples / 2
        return rtn_compress(mod, 3, 16, True)

    model = tiny()
    events = []
    L.run_sequential(model, ids(), device="cpu", true_sequential=True, batch=3, progress=events.append,
                     make_collector=lambda n, m: HessianCollector(m.in_features, "cpu"), compress=compress,
                     staged=staged)
    steps = [e.step for e in events]
    if staged:  # each group's inputs computed once, in order, then the outputs
        assert steps.count("calibrate") == 4 * 2 and steps.count("outputs") == 2
    else:  # with the shortcut, no layer needs a separate forward pass for its outputs
        assert ("outputs" in steps) == (budget == 0)
    assert set(got) == set(want)
    for k in want:
        assert torch.allclose(got[k], want[k], rtol=1e-4, atol=1e-3), k
    for (k, a), b in zip(model.state_dict().items(), naive_model.state_dict().values()):
        assert torch.equal(a, b), k


def test_cancel_between_layers_and_progress():
    model = tiny()
    before = model.model.layers[1].mlp.down_proj.weight.clone()
    events = []
    done = lambda: any(e.step == "done" for e in events)
    with pytest.raises(Cancelled):
        apply_method(model, parse_spec("gptq-4b-g16"), ids(), device="cpu", progress=events.append, cancel=done)
    assert {e.layer for e in events if e.step == "done"} == {1}
    assert all(e.n_layers == 2 and e.spec == "gptq-4b-g16" for e in events)
    assert any(e.step == "compress self_attn.q_proj" for e in events)
    assert torch.equal(model.model.layers[1].mlp.down_proj.weight, before)  # layer 2 untouched
    with pytest.raises(Cancelled):  # cancelled before anything happens
        apply_method(tiny(), parse_spec("magnitude-0.5"), None, device="cpu", cancel=lambda: True)


def test_calibrated_methods_require_ids():
    with pytest.raises(CtrustError, match="calibration"):
        apply_method(tiny(), parse_spec("sparsegpt-0.5"), None, device="cpu")


def test_staged_path_is_verified_before_it_is_trusted(monkeypatch):
    # a layer whose real forward differs from the staged chain (here: a wrong MLP stage) must take
    # the hooked path, with the same result as the naive loop
    from ctrust_tui.compress import staged as S

    monkeypatch.setattr(S.StagedLayer, "mlp_inner", lambda self, x2: self.mlp.up_proj(x2))
    naive_model = tiny()
    _naive_true_sequential(naive_model, ids())
    model = tiny()
    events = []
    L.run_sequential(model, ids(), device="cpu", true_sequential=True, batch=3, progress=events.append,
                     make_collector=lambda n, m: HessianCollector(m.in_features, "cpu"),
                     compress=lambda i, name, mod, c: rtn_compress(mod, 3, 16, True))
    steps = [e.step for e in events]
    assert steps.count("calibrate") == 4 * 2 and "outputs" not in steps  # hooked path + fix-up
    for (k, a), b in zip(model.state_dict().items(), naive_model.state_dict().values()):
        assert torch.equal(a, b), k
    assert not S.StagedLayer(model.model.layers[0], {}).supports(model.model.layers[0], ["self_attn.q_proj"])
