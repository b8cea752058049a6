from __future__ import annotations

import pytest

from ctrust_tui.compress.spec import CompressionSpec, parse_spec, parse_specs
from ctrust_tui.errors import InvalidSpec


@pytest.mark.parametrize(
    "text",
    ["none", "gptq-4b-g128", "gptq-3b-g64-noact-asym", "gptq-2b-pc", "gptq-8b-g32", "awq-3b-g128", "awq-4b-g64-sym",
     "rtn-4b-g128", "rtn-3b-pc", "sparsegpt-0.5", "sparsegpt-2:4", "wanda-0.6", "wanda-2:4", "wanda-1:2",
     "magnitude-4:8", "magnitude-0.25", "bnb-int8", "bnb-nf4", "bnb-fp4"],
)
def test_round_trip(text: str) -> None:
    spec = parse_spec(text)
    assert str(spec) == text
    assert parse_spec(str(spec)) == spec


def test_method_defaults_follow_the_references() -> None:
    # AutoGPTQ BaseQuantizeConfig(bits, group_size, desc_act=True): symmetric, act-order
    gptq = parse_spec("gptq-4b-g128")
    assert gptq.sym and gptq.act_order
    assert str(parse_spec("gptq-4b-g128-asym")) == "gptq-4b-g128-asym"
    # llm-awq zero_point=True: asymmetric; the symmetric grid is one token away
    awq = parse_spec("awq-4b-g128")
    assert awq.sym is False and CompressionSpec(method="awq", bits=4) == awq
    assert parse_spec("awq-4b-g128-asym") == awq and str(parse_spec("awq-4b-g128-asym")) == "awq-4b-g128"
    assert parse_spec("awq-4b-g128-sym").sym is True
    assert CompressionSpec(method="rtn", bits=4).sym is True
    # AutoGPTQ static_groups (compressed-tensors actorder "weight"): one token, packable act-order
    static = parse_spec("gptq-4b-g128-static")
    assert static.static_groups and static.act_order and str(static) == "gptq-4b-g128-static"
    with pytest.raises(InvalidSpec, match="static groups"):
        parse_spec("gptq-4b-pc-static")


def test_aliases_normalise() -> None:
    assert str(parse_spec("GPTQ-4bit-G128")) == "gptq-4b-g128"
    assert str(parse_spec("rtn-4b-g-1")) == "rtn-4b-pc"
    assert str(parse_spec("wanda-50%")) == "wanda-0.5"
    assert parse_spec("dense").is_dense
    assert parse_spec("wanda-2:4").target_sparsity == 0.5


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("gptq-5b-g128", "unsupported bits 5; choose one of 2, 3, 4, 8"),
        ("awq-2b-g128", "choose one of 3, 4, 8"),
        ("gptq-4b-g100", "power of two"),
        ("wanda-1.5", "sparsity must be in (0, 1)"),
        ("wanda-0", "sparsity must be in (0, 1)"),
        ("sparsegpt-4:2", "0 < N < M"),
        ("magnitude-4:4", "0 < N < M"),
        ("bnb-q4", "int8, nf4, fp4"),
        ("zip-4b", "unknown compression"),
        ("gptq-g128", "give the bits"),
        ("gptq-4b-foo", "cannot parse"),
    ],
)
def test_bad_specs_name_valid_choices(text: str, fragment: str) -> None:
    with pytest.raises(InvalidSpec) as exc:
        parse_spec(text)
    assert fragment in str(exc.value)


def test_parse_specs_dedupes_in_order() -> None:
    specs = parse_specs("none, gptq-4b-g128,wanda-2:4,none")
    assert [str(s) for s in specs] == ["none", "gptq-4b-g128", "wanda-2:4"]
    assert specs[0] == CompressionSpec()
