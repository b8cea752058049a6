import pytest
import torch
from tiny_llama import tiny

from ctrust_tui.compress.gptq import HessianCollector, gptq_quantize_weight
from ctrust_tui.compress.methods import apply_method
from ctrust_tui.compress.rtn import rtn_quantize_weight
from ctrust_tui.compress.spec import parse_spec


def correlated_inputs(n=512, d=96, seed=1):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g) * torch.logspace(0, -2, d).reshape(1, -1)  # anisotropic
    return torch.randn(n, d, generator=g) @ A + 0.1 * torch.randn(n, d, generator=g)


def hessian(X):
    c = HessianCollector(X.shape[1], "cpu")
    c.add(X.unsqueeze(0))
    return c.hessian()


@pytest.mark.parametrize("bits", [3, 4])
@pytest.mark.parametrize("act_order", [True, False])
def test_gptq_output_error_below_rtn(bits, act_order):
    X = correlated_inputs()
    W = torch.randn(48, 96, generator=torch.Generator().manual_seed(2))
    H = hessian(X)
    Q, loss = gptq_quantize_weight(W, H, bits, group_size=32, sym=True, act_order=act_order)
    R = rtn_quantize_weight(W, bits, 32, True)
    err_gptq = ((X @ (W - Q).t()) ** 2).sum()
    err_rtn = ((X @ (W - R).t()) ** 2).sum()
    assert err_gptq < 0.8 * err_rtn
    assert loss > 0


@pytest.mark.parametrize("act_order", [False, True])
@pytest.mark.parametrize("sym", [True, False])
def test_gptq_levels_per_group(act_order, sym):
    X = correlated_inputs(d=64)
    W = torch.randn(16, 64, generator=torch.Generator().manual_seed(3))
    H = hessian(X)
    Q, _ = gptq_quantize_weight(W, H, 3, group_size=16, sym=sym, act_order=act_order)
    # with act_order the groups are consecutive columns of the permuted order (the reference's choice)
    perm = torch.argsort(torch.diag(H), descending=True) if act_order else torch.arange(64)
    Qp = Q[:, perm]
    for r in range(16):
        for c in range(0, 64, 16):
            assert torch.unique(Qp[r, c : c + 16]).numel() <= 8


def test_gptq_per_channel_and_dead_columns():
    X = correlated_inputs(d=64)
    X[:, 5] = 0  # a dead input feature
    W = torch.randn(8, 64)
    Q, _ = gptq_quantize_weight(W, hessian(X), 4, group_size=-1, sym=False, act_order=True)
    assert torch.all(Q[:, 5] == 0)
    for r in range(8):
        assert torch.unique(Q[r]).numel() <= 16


@pytest.mark.parametrize("bits", [3, 4])
def test_gptq_beats_rtn_on_the_model_calibration_outputs(bits):
    torch.manual_seed(1)
    ids = torch.randint(0, 256, (8, 32))
    dense = tiny()
    with torch.no_grad():
        ref = dense(ids).logits
    errs = {}
    for method in ("gptq", "rtn"):
        model = tiny()
        st = apply_method(model, parse_spec(f"{method}-{bits}b-g16"), ids, device="cpu")
        assert st["method"] == method and len(st["layers"]) == 14
        with torch.no_grad():
            errs[method] = float(((model(ids).logits - ref) ** 2).mean())
        W = model.model.layers[0].self_attn.q_proj.weight
        assert W.dtype == torch.float32
    assert errs["gptq"] < errs["rtn"]


def test_stacked_modules_give_the_same_result_as_one_by_one():
    from torch import nn

    from ctrust_tui.compress.gptq import gptq_compress, gptq_compress_shared

    H = hessian(correlated_inputs(d=64))
    torch.manual_seed(4)
    a, b = nn.Linear(64, 32, bias=False), nn.Linear(64, 16, bias=False)
    a2, b2 = nn.Linear(64, 32, bias=False), nn.Linear(64, 16, bias=False)
    a2.load_state_dict(a.state_dict())
    b2.load_state_dict(b.state_dict())
    st = gptq_compress_shared([a, b], H, 4, 16, True, True)
    st1, st2 = gptq_compress(a2, H, 4, 16, True, True), gptq_compress(b2, H, 4, 16, True, True)
    assert torch.allclose(a.weight, a2.weight, atol=1e-6) and torch.allclose(b.weight, b2.weight, atol=1e-6)
    assert st[0]["error"] == pytest.approx(st1["error"], rel=1e-4)
    assert st[1]["error"] == pytest.approx(st2["error"], rel=1e-4)


def test_blocked_hessian_equals_the_full_product():
    X = correlated_inputs(n=300, d=450)
    c = HessianCollector(450, "cpu")
    assert c.upper_only
    c.add(X[:100].reshape(2, 50, 450))
    c.add(X[100:].unsqueeze(0))
    want = 2 / 3 * X.t() @ X
    assert torch.allclose(c.hessian(), want, rtol=1e-4, atol=1e-2)
    assert torch.equal(c.hessian(), c.hessian().t())


def test_inverse_cholesky_is_the_references_upper_factor_of_the_inverse():
    # the reference: cholesky(cholesky_inverse(cholesky(H + damp)), upper=True); ours skips the
    # n^3 product and the second factorisation (reversal trick) and must give the same matrix
    from ctrust_tui.compress.gptq import _inverse_cholesky_upper

    g = torch.Generator().manual_seed(3)
    X = torch.randn(300, 96, generator=g, dtype=torch.float64) * torch.rand(96, generator=g, dtype=torch.float64)
    H = X.t() @ X
    damped = H.clone()
    damped.diagonal().add_(0.01 * torch.diag(H).mean())
    ref = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(damped)), upper=True)
    ours = _inverse_cholesky_upper(H.clone(), 0.01)
    assert torch.equal(ours, torch.triu(ours))  # upper triangular
    assert bool((torch.diag(ours) > 0).all())
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n", [5, 384, 1000])
def test_blocked_triangular_inverse(n):
    from ctrust_tui.compress.gptq import _lower_triangular_inverse

    g = torch.Generator().manual_seed(n)
    X = torch.randn(2 * n, n, generator=g, dtype=torch.float64)
    L = torch.linalg.cholesky(X.t() @ X + torch.eye(n, dtype=torch.float64))
    inv = _lower_triangular_inverse(L, leaf=64)
    assert torch.equal(inv, torch.tril(inv))
    torch.testing.assert_close(inv @ L, torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-9)


@pytest.mark.parametrize("act_order,group_size,sym,bits,static", [
    (False, 64, True, 4, False), (True, 32, False, 4, False), (False, -1, True, 4, False), (True, 64, True, 3, False),
    (True, 64, True, 4, True), (True, 32, False, 3, True)])
def test_gptq_matches_the_literal_reference_loop(act_order, group_size, sym, bits, static):
    """Transposed weights, the flipped-Cholesky Hinv and two-level lazy updates regroup the same
    sums as the reference's loop: the same quantized weights (a BLAS-order near-tie may round the
    other way, so allow a handful of the 7,680 weights to differ)."""
    from reference_loops import gptq_literal

    from ctrust_tui.compress.gptq import INNER_BLOCK

    X = correlated_inputs(n=1024, d=320, seed=3)
    W = torch.randn(24, 320, generator=torch.Generator().manual_seed(4))
    H = hessian(X)
    assert 320 % 128 and 128 % INNER_BLOCK == 0  # a short last block and several inner blocks
    Q, _ = gptq_quantize_weight(W, H, bits, group_size=group_size, sym=sym, act_order=act_order,
                                static_groups=static)
    R = gptq_literal(W, H, bits, group_size=group_size, sym=sym, act_order=act_order, static_groups=static)
    assert (Q - R).abs().gt(1e-4).float().mean() < 2e-3
    assert torch.allclose(((X @ (W - Q).t()) ** 2).sum(), ((X @ (W - R).t()) ** 2).sum(), rtol=1e-3)
    if static:  # act-order with static groups lies on a grid of consecutive columns: it packs exactly
        from ctrust_tui.compress.grid import recover_grid

        grid = recover_grid(Q, bits, group_size, sym)
        assert torch.equal(grid.dequantize().view(torch.int32), Q.contiguous().view(torch.int32))
