"""`--prompt-format fork`: the fork's FastChat rendering, quirks included (strings worked out by hand
from FastChat's `get_prompt` as vendored in decoding-comp-trust/DecodingTrust src/dt/conversation.py)."""

from __future__ import annotations

import pytest

from ctrust_tui.errors import CtrustError
from ctrust_tui.trust.prompt_format import FORK_TEMPLATES, fork_template_for, parse_prompt_format
from ctrust_tui.trust.types import Message

SYS, USER, ASSIST = (Message("system", "You are a helpful assistant."), Message("user", "Is it wrong?"),
                     Message("assistant", "Yes"))


def test_llama2_system_replaces_the_inst_sys_wrapper_and_glues_the_first_turn():
    assert FORK_TEMPLATES["llama-2"].render([SYS, USER]) == "You are a helpful assistant.Is it wrong?[/INST]"


def test_llama2_multi_turn_uses_both_separators():
    out = FORK_TEMPLATES["llama-2"].render([SYS, USER, ASSIST, Message("user", "And now?")])
    assert out == "You are a helpful assistant.Is it wrong?[/INST] Yes </s><s>[INST] And now? [/INST]"


def test_llama2_without_system_keeps_the_default_wrapper():
    out = FORK_TEMPLATES["llama-2"].render([USER])
    assert out.startswith("<s>[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.")
    assert out.endswith("<</SYS>>\n\nIs it wrong?[/INST]")


def test_vicuna_colon_two():
    assert (FORK_TEMPLATES["vicuna_v1.1"].render([SYS, USER, ASSIST, USER])
            == "You are a helpful assistant. USER: Is it wrong? ASSISTANT: Yes</s>USER: Is it wrong? ASSISTANT:")


def test_fallback_instruct_template_and_its_stop_string_quirk():
    t = FORK_TEMPLATES["redpajama-incite-instruct"]
    assert t.render([SYS, USER, ASSIST, USER]) == "You are a helpful assistant.Is it wrong?\nanswer: Yes\nIs it wrong?\nanswer:"
    assert t.postprocess("wrong sentence two") == "wrong "
    assert t.postprocess("wrong") == "wron"  # str.find -> -1 drops the last character, as the fork does


def test_template_choice_follows_comp_trust_model_configs():
    assert fork_template_for("fork", model_type="llama", chat_template="{% [INST] %}").name == "llama-2"
    assert fork_template_for("fork", name="lmsys/vicuna-13b-v1.3").name == "vicuna_v1.1"
    assert fork_template_for("fork", model_type="llama", chat_template="<|im_start|>").name == "redpajama-incite-instruct"
    assert fork_template_for("fork:vicuna_v1.1", model_type="llama").name == "vicuna_v1.1"


def test_unknown_prompt_format_is_one_line():
    assert parse_prompt_format("fork:llama-2") == "fork:llama-2"
    with pytest.raises(CtrustError, match="unknown prompt format 'chatml'; choose from: model, fork, fork:llama-2"):
        parse_prompt_format("chatml")
