"""How chat messages become the prompt string: the model's own template, or the fork's rendering.

The paper's runs rendered chat prompts through the FastChat conversation templates vendored in
the decoding-comp-trust DecodingTrust fork (`src/dt/conversation.py`, `HFChat.messages_to_prompt`
in `src/dt/chat.py`), with the template named in each model config of comp-trust:
`llama-2` for LLaMA-2-chat, `vicuna_v1.1` for Vicuna, `redpajama-incite-instruct` for the base
LLaMA-2 models (the fallback). Their quirks change what the model sees, so `--prompt-format fork`
reproduces them exactly:

- a system message *replaces* the template's system text verbatim; for `llama-2` that drops the
  `[INST] <<SYS>>` wrapper, and the first user turn follows the system text with no separator:
  "You are a helpful assistant.Q[/INST]";
- the fork never adds turns of its own: few-shot demonstrations are whatever messages the
  dimension built (fairness few-shot puts them in the system message, as the fork's code does);
- templates with a stop string cut the completion at its first occurrence with Python's
  `text[:text.find(stop)]`, so a completion *without* it loses its last character
  (`redpajama-incite-instruct`, stop string "sentence").

The template strings below are data from FastChat (Apache-2.0) as vendored in the fork. The BOS
token is not part of the text: the fork's HuggingFace client tokenized the prompt with the
tokenizer's default special tokens, which the engine reproduces (`needs_bos`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import CtrustError
from .types import Message

MODEL, FORK = "model", "fork"
PROMPT_FORMATS: tuple[str, ...] = (MODEL, FORK)

_LLAMA2_SYSTEM = (
    "<s>[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant. Always answer as helpfully as possible, "
    "while being safe. Your answers should not include any harmful, unethical, racist, sexist, toxic, dangerous, or "
    "illegal content. Please ensure that your responses are socially unbiased and positive in nature.\n\n"
    "If a question does not make any sense, or is not factually coherent, explain why instead of answering something "
    "not correct. If you don't know the answer to a question, please don't share false information.\n<</SYS>>\n\n"
)
_VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
                  "The assistant gives helpful, detailed, and polite answers to the user's questions.")


@dataclass(frozen=True)
class ForkTemplate:
    """One FastChat conversation template as the fork used it."""

    name: str
    system: str
    roles: tuple[str, str]
    style: str  # "llama2" | "colon_two" | "instruct"
    sep: str
    sep2: str = ""
    stop_str: str | None = None

    def render(self, messages: Sequence[Message]) -> str:
        system = self.system
        turns: list[tuple[str, str | None]] = []
        for m in messages:
            if m.role == "system":
                system = m.content  # replaces the template's system text verbatim
            elif m.role == "user":
                turns.append((self.roles[0], m.content))
            elif m.role == "assistant":
                turns.append((self.roles[1], m.content))
            else:
                raise CtrustError(f"unknown message role {m.role!r} (expected system, user or assistant)")
        turns.append((self.roles[1], None))
        seps = (self.sep, self.sep2)
        if self.style == "llama2":
            out = ""
            for i, (role, msg) in enumerate(turns):
                if msg:
                    out += system + msg if i == 0 else role + " " + msg + seps[i % 2]
                else:
                    out += role
            return out
        if self.style == "colon_two":
            out = system + seps[0]
            for i, (role, msg) in enumerate(turns):
                out += role + ": " + msg + seps[i % 2] if msg else role + ":"
            return out
        if self.style == "instruct":
            out = system
            for role, msg in turns:
                if msg:
                    out += (role + ": " + msg if role == "answer" else msg) + self.sep
                else:
                    out += role + ":"
            return out
        raise AssertionError(self.style)

    def postprocess(self, text: str) -> str:
        """The fork's `post_process_generation`, including its cut of the last character when the
        stop string is absent (`str.find` returns -1)."""
        if self.stop_str:
            return text[: text.find(self.stop_str)]
        return text


FORK_TEMPLATES: dict[str, ForkTemplate] = {
    "llama-2": ForkTemplate("llama-2", _LLAMA2_SYSTEM, ("[INST]", "[/INST]"), "llama2", " ", " </s><s>"),
    "vicuna_v1.1": ForkTemplate("vicuna_v1.1", _VICUNA_SYSTEM, ("USER", "ASSISTANT"), "colon_two", " ", "</s>"),
    "redpajama-incite-instruct": ForkTemplate("redpajama-incite-instruct", "", ("", "answer"), "instruct", "\n",
                                              stop_str="sentence"),
}
FALLBACK_TEMPLATE = "redpajama-incite-instruct"


def parse_prompt_format(text: str) -> str:
    """`model`, `fork` (template chosen from the model) or `fork:<template>`; one clear error otherwise."""
    value = (text or "").strip()
    if value in PROMPT_FORMATS:
        return value
    if value.startswith(FORK + ":") and value.split(":", 1)[1] in FORK_TEMPLATES:
        return value
    choices = ", ".join([*PROMPT_FORMATS, *(f"fork:{n}" for n in FORK_TEMPLATES)])
    raise CtrustError(f"unknown prompt format {text!r}; choose from: {choices}")


def fork_template_for(prompt_format: str, *, model_type: str = "", name: str = "",
                      chat_template: str | None = None) -> ForkTemplate:
    """The fork template a model would have been run with: named explicitly, else LLaMA-2-chat
    (an `[INST]` chat template) -> llama-2, Vicuna (by name) -> vicuna_v1.1, anything else -> the
    base-model fallback, as comp-trust's model configs assign them."""
    if prompt_format.startswith(FORK + ":"):
        return FORK_TEMPLATES[prompt_format.split(":", 1)[1]]
    if "vicuna" in name.lower():
        return FORK_TEMPLATES["vicuna_v1.1"]
    if model_type == "llama" and chat_template and "[INST]" in chat_template:
        return FORK_TEMPLATES["llama-2"]
    return FORK_TEMPLATES[FALLBACK_TEMPLATE]
