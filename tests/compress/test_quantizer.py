import pytest
import torch

from ctrust_tui.compress.quantizer import fake_quantize, minmax_params, quantize_groups


def _levels_per_group(Q, gs):
    cols = Q.shape[1]
    gs = cols if gs == -1 else gs
    return max(int(torch.unique(Q[r, c : c + gs]).numel()) for r in range(Q.shape[0]) for c in range(0, cols, gs))


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("gs", [16, -1, 24])  # 24 does not divide 40: a short last group
def test_rtn_levels_per_group(bits, sym, gs):
    torch.manual_seed(0)
    W = torch.randn(12, 40)
    Q = quantize_groups(W, bits, gs, sym)
    assert Q.shape == W.shape
    assert _levels_per_group(Q, gs) <= 2**bits
    if not sym:  # asym min-max: round-to-nearest error is at most half a step
        span = W.max() - W.min()
        assert (W - Q).abs().max() <= span / (2**bits - 1) / 2 + 1e-6


def test_semantics_match_gptq_quantizer():
    x = torch.tensor([[-1.0, 0.5, 2.0], [0.5, 1.0, 3.0], [0.0, 0.0, 0.0]])
    scale, zero = minmax_params(x, 4, sym=False)
    # range includes 0; asym zero = round(-xmin/scale); all-zero row -> [-1, 1]
    assert torch.allclose(scale.flatten(), torch.tensor([3.0 / 15, 3.0 / 15, 2.0 / 15]))
    assert torch.equal(zero.flatten(), torch.round(torch.tensor([1.0, 0.0, 1.0]) / scale.flatten()))
    scale, zero = minmax_params(x, 4, sym=True)
    assert torch.all(zero == 8)  # (maxq + 1) / 2
    assert torch.allclose(scale[0], torch.tensor(4.0 / 15))  # xmin -> -max(|xmin|, xmax)
    # reference quirk kept: a row with no negative value keeps xmin = 0 under sym (half the range)
    assert torch.allclose(scale[1], torch.tensor(3.0 / 15))
    q = fake_quantize(x, scale, zero, 15)
    assert q[2].abs().sum() == 0  # zero stays exactly zero
    manual = scale * (torch.clamp(torch.round(x / scale) + zero, 0, 15) - zero)
    assert torch.equal(q, manual)
