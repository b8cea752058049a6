import torch
from tiny_llama import tiny

from ctrust_tui.compress.methods import apply_method
from ctrust_tui.compress.spec import parse_spec


def test_rtn_needs_no_calibration_and_quantizes_only_decoder_linears():
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    st = apply_method(model, parse_spec("rtn-3b-g16"), None, device="cpu")
    after = model.state_dict()
    assert torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    assert torch.equal(before["lm_head.weight"], after["lm_head.weight"])
    assert torch.equal(before["model.layers.0.input_layernorm.weight"], after["model.layers.0.input_layernorm.weight"])
    assert len(st["layers"]) == 14 and st["error"] > 0
    W = after["model.layers.1.mlp.down_proj.weight"]
    assert not torch.equal(W, before["model.layers.1.mlp.down_proj.weight"])
    for r in range(W.shape[0]):
        for c in range(0, W.shape[1], 16):
            assert torch.unique(W[r, c : c + 16]).numel() <= 8
