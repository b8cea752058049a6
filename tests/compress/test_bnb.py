"""bitsandbytes: spec -> BitsAndBytesConfig, nominal bits, real memory of a loaded model."""

from __future__ import annotations

import pytest
import torch
from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

from ctrust_tui.compress.bnb import (
    bnb_quantization_config,
    bnb_settings,
    memory_report,
    nominal_bits_per_weight,
)
from ctrust_tui.compress.spec import parse_spec
from ctrust_tui.errors import InvalidSpec


def test_config_mapping():
    c8 = bnb_quantization_config(parse_spec("bnb-int8"))
    assert isinstance(c8, BitsAndBytesConfig) and c8.load_in_8bit and not c8.load_in_4bit
    assert c8.llm_int8_threshold == 6.0
    nf4 = bnb_quantization_config(parse_spec("bnb-nf4"), torch.bfloat16)
    assert nf4.load_in_4bit and nf4.bnb_4bit_quant_type == "nf4"
    assert nf4.bnb_4bit_compute_dtype == torch.bfloat16 and not nf4.bnb_4bit_use_double_quant
    fp4 = bnb_quantization_config(parse_spec("bnb-fp4"), "float32")
    assert fp4.bnb_4bit_quant_type == "fp4" and fp4.bnb_4bit_compute_dtype == torch.float32
    assert bnb_settings(parse_spec("bnb-fp4"))["bnb_4bit_quant_type"] == "fp4"
    with pytest.raises(InvalidSpec, match="bnb-int8"):
        bnb_quantization_config(parse_spec("gptq-4b-g128"))


def test_nominal_bits():
    assert nominal_bits_per_weight(parse_spec("bnb-nf4")) == 4.5
    assert nominal_bits_per_weight(parse_spec("bnb-int8"), 64) == 8.5
    assert nominal_bits_per_weight(parse_spec("gptq-4b-g128")) == 4 + 16 / 128
    assert nominal_bits_per_weight(parse_spec("gptq-4b-g128-asym")) == 4 + 20 / 128
    assert nominal_bits_per_weight(parse_spec("awq-3b-g64")) == 3 + 19 / 64  # zero point always
    assert nominal_bits_per_weight(parse_spec("rtn-4b-pc"), 576) == 4 + 16 / 576
    assert nominal_bits_per_weight(parse_spec("wanda-2:4")) is None


def test_memory_report_dense_and_nf4(tmp_path):
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=256)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    dense = LlamaForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    d = memory_report(dense)
    assert d["bits_per_weight"] == 32.0
    assert d["n_params"] == sum(p.numel() for p in dense.parameters())
    assert d["bytes_in_memory"] >= 4 * d["n_params"]
    q = LlamaForCausalLM.from_pretrained(tmp_path, quantization_config=bnb_quantization_config(parse_spec("bnb-nf4")),
                                         device_map="cpu", dtype=torch.float32)
    r = memory_report(q)
    assert r["n_params"] == d["n_params"]
    assert 4.5 <= r["bits_per_weight"] < 4.7  # 4 bits + fp32 absmax per 64 (+ the 16-entry code table)
    assert r["bytes_in_memory"] < d["bytes_in_memory"]
