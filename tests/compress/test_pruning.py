import pytest
import torch
from tiny_llama import ids, tiny

from ctrust_tui.compress.gptq import HessianCollector
from ctrust_tui.compress.layers import find_linears
from ctrust_tui.compress.magnitude import magnitude_mask
from ctrust_tui.compress.methods import apply_method
from ctrust_tui.compress.sparsegpt import sparsegpt_prune_weight
from ctrust_tui.compress.spec import parse_spec


def linears(model):
    for i, layer in enumerate(model.model.layers):
        for name, mod in find_linears(layer).items():
            yield f"{i}.{name}", mod.weight.data


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
@pytest.mark.parametrize("n,m", [(1, 2), (2, 4), (4, 8)])
def test_exact_nm_pattern(method, n, m):
    model = tiny()
    st = apply_method(model, parse_spec(f"{method}-{n}:{m}"), ids(), device="cpu")
    for key, W in linears(model):
        zeros = (W == 0).reshape(W.shape[0], -1, m).sum(-1)
        assert torch.all(zeros == m - n), key
        assert st["layers"][key]["sparsity"] == pytest.approx(1 - n / m)
    assert st["sparsity"] == pytest.approx(1 - n / m)


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
@pytest.mark.parametrize("sparsity", [0.5, 0.3])
def test_unstructured_sparsity_per_matrix(method, sparsity):
    model = tiny()
    apply_method(model, parse_spec(f"{method}-{sparsity}"), ids(), device="cpu")
    for key, W in linears(model):
        frac = float((W == 0).float().mean())
        assert abs(frac - sparsity) <= 1.0 / W.shape[1], key
        if method == "wanda":  # exactly int(cols * s) per output row
            assert torch.all((W == 0).sum(1) == int(W.shape[1] * sparsity))
        if method == "magnitude":
            assert int((W == 0).sum()) == int(W.numel() * sparsity)


def _inputs_by_hand(model, layer_idx):
    """Per-linear sum of x^2 over calibration tokens, by plain forward hooks on the full model."""
    sq, hs = {}, []
    for name, mod in find_linears(model.model.layers[layer_idx]).items():
        def hook(m, args, name=name):
            x = args[0].reshape(-1, args[0].shape[-1]).float()
            sq[name] = sq.get(name, 0) + (x**2).sum(0)
        hs.append(mod.register_forward_pre_hook(hook))
    with torch.no_grad():
        model(ids())
    for h in hs:
        h.remove()
    return sq


def test_wanda_mask_is_the_per_row_metric_selection():
    dense = tiny()
    model = tiny()
    apply_method(model, parse_spec("wanda-0.5"), ids(), device="cpu")
    for li in range(2):
        # the inputs of layer li come from the already pruned layers < li, the layer itself is dense
        probe = tiny()
        sd = {k: v for k, v in model.state_dict().items() if not k.startswith(f"model.layers.{li}.")}
        probe.load_state_dict(sd, strict=False)
        sq = _inputs_by_hand(probe, li)
        for name, mod in find_linears(dense.model.layers[li]).items():
            W = mod.weight.data
            metric = W.abs() * sq[name].sqrt().reshape(1, -1)
            k = W.shape[1] // 2
            expected = torch.zeros_like(W, dtype=torch.bool)
            expected.scatter_(1, torch.argsort(metric, dim=1)[:, :k], True)
            got = find_linears(model.model.layers[li])[name].weight.data == 0
            assert torch.equal(got, expected), (li, name)
            kept = find_linears(model.model.layers[li])[name].weight.data
            assert torch.equal(kept[~expected], W[~expected])  # Wanda does not update weights


@pytest.mark.parametrize("spec", [{"sparsity": 0.5}, {"n": 2, "m": 4}])
def test_sparsegpt_reconstruction_beats_magnitude(spec):
    g = torch.Generator().manual_seed(0)
    A = torch.randn(128, 128, generator=g) * torch.logspace(0, -1.5, 128).reshape(1, -1)
    X = torch.randn(1024, 128, generator=g) @ A
    W = torch.randn(64, 128, generator=g)
    c = HessianCollector(128, "cpu")
    c.add(X.unsqueeze(0))
    P, loss = sparsegpt_prune_weight(W, c.hessian(), **spec)
    loss = float(loss.sum())
    M = W.masked_fill(magnitude_mask(W, spec.get("sparsity"), spec.get("n"), spec.get("m")), 0)
    assert float((P == 0).float().mean()) == pytest.approx(0.5)
    err_s = ((X @ (W - P).t()) ** 2).sum()
    err_m = ((X @ (W - M).t()) ** 2).sum()
    assert err_s < 0.7 * err_m


@pytest.mark.parametrize("spec", ["0.5", "2:4"])
def test_sparsegpt_beats_magnitude_on_model_outputs(spec):
    dense = tiny()
    with torch.no_grad():
        ref = dense(ids()).logits
    errs = {}
    for method in ("sparsegpt", "magnitude"):
        model = tiny()
        apply_method(model, parse_spec(f"{method}-{spec}"), ids(), device="cpu")
        with torch.no_grad():
            errs[method] = float(((model(ids()).logits - ref) ** 2).mean())
    assert errs["sparsegpt"] < errs["magnitude"]


@pytest.mark.parametrize("spec", [{"sparsity": 0.5}, {"n": 2, "m": 4}])
def test_sparsegpt_stacked_modules_match_one_by_one(spec):
    from torch import nn

    from ctrust_tui.compress.sparsegpt import sparsegpt_compress, sparsegpt_compress_shared

    g = torch.Generator().manual_seed(5)
    X = torch.randn(512, 64, generator=g) @ torch.randn(64, 64, generator=g)
    c = HessianCollector(64, "cpu")
    c.add(X.unsqueeze(0))
    torch.manual_seed(6)
    a, b = nn.Linear(64, 32, bias=False), nn.Linear(64, 16, bias=False)
    a2, b2 = nn.Linear(64, 32, bias=False), nn.Linear(64, 16, bias=False)
    a2.load_state_dict(a.state_dict())
    b2.load_state_dict(b.state_dict())
    sparsegpt_compress_shared([a, b], c.hessian(), **spec)
    sparsegpt_compress(a2, c.hessian(), **spec)
    sparsegpt_compress(b2, c.hessian(), **spec)
    assert torch.equal(a.weight == 0, a2.weight == 0) and torch.equal(b.weight == 0, b2.weight == 0)
    assert torch.allclose(a.weight, a2.weight, atol=1e-5) and torch.allclose(b.weight, b2.weight, atol=1e-5)


def test_lowest_k_matches_a_stable_sort_with_ties():
    from ctrust_tui.compress.masks import lowest_k

    g = torch.Generator().manual_seed(7)
    M = torch.randint(0, 5, (20, 30), generator=g).float()  # many ties
    for k in (0, 1, 7, 15, 29, 30):
        want = torch.zeros_like(M, dtype=torch.bool)
        want.scatter_(1, torch.sort(M, dim=1, stable=True).indices[:, :k], True)
        assert torch.equal(lowest_k(M, k), want), k


@pytest.mark.parametrize("spec", [{"sparsity": 0.5}, {"sparsity": 0.3}, {"n": 2, "m": 4}, {"n": 4, "m": 8},
                                  {"n": 8, "m": 32}, {"n": 6, "m": 12}])
def test_sparsegpt_matches_the_literal_reference_loop(spec):
    """Same masks and reconstructed weights as the reference's loop, including N:M groups that are
    wider than, or straddle, the inner lazy-update blocks (m = 32, m = 12)."""
    from reference_loops import sparsegpt_literal

    g = torch.Generator().manual_seed(8)
    X = torch.randn(1024, 288, generator=g) @ torch.randn(288, 288, generator=g) + torch.randn(1024, 288, generator=g)
    c = HessianCollector(288, "cpu")
    c.add(X.unsqueeze(0))
    W = torch.randn(20, 288, generator=g)
    blocksize = 96 if spec.get("m") == 12 else 128  # the block must be a multiple of m
    P, _ = sparsegpt_prune_weight(W, c.hessian(), blocksize=blocksize, **spec)
    R = sparsegpt_literal(W, c.hessian(), blocksize=blocksize, **spec)
    assert torch.equal(P == 0, R == 0)
    assert torch.allclose(P, R, atol=1e-4, rtol=1e-4)
