"""Engine tests on a tiny random Llama and a word-level tokenizer built in-test (no downloads)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from ctrust_tui.backend import GenRequest
from ctrust_tui.engine.generate import Generator, adds_bos, batch_seed, render_messages, truncate_at_stop
from ctrust_tui.errors import Cancelled
from ctrust_tui.trust.chat import completion_messages
from ctrust_tui.trust.types import Decoding, Message

SENTENCES = [
    "the cat sat on the mat .",
    "a dog ran in the park : yes",
    "user assistant system : the answer is no",
    "wrong not wrong agree disagree positive negative",
    "one two three four five six seven eight nine ten",
]
PROMPTS = [
    "the cat",
    "a dog ran in the park : yes the",
    "one two three four five",
    "user : the answer",
    "wrong not wrong agree disagree positive negative one two three",
    "mat",
]
TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}"
)


def make_tok() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over SENTENCES with a one-line chat template (also used by test_continuous)."""
    t = Tokenizer(models.WordLevel(unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    t.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=["<pad>", "<eos>", "<unk>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=t, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    fast.padding_side = "left"
    fast.chat_template = TEMPLATE
    return fast


@pytest.fixture(scope="module")
def tok():
    return make_tok()


def tiny_causal_lm(tok, config_cls=LlamaConfig, model_cls=LlamaForCausalLM, **extra):
    """A 2-layer random decoder over the test tokenizer (seeded)."""
    torch.manual_seed(0)
    cfg = config_cls(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=len(tok), pad_token_id=tok.pad_token_id,
                     eos_token_id=tok.eos_token_id, bos_token_id=None, **extra)
    m = model_cls(cfg).eval()
    m.generation_config.eos_token_id = tok.eos_token_id
    m.generation_config.pad_token_id = tok.pad_token_id
    return m


@pytest.fixture(scope="module")
def model(tok):
    return tiny_causal_lm(tok, initializer_range=0.2)


def greedy(n: int = 12, stop: tuple[str, ...] = ()) -> Decoding:
    return Decoding(max_new_tokens=n, stop=stop)


def reqs(prompts, decoding) -> list[GenRequest]:
    return [GenRequest(f"k{i}", p, decoding) for i, p in enumerate(prompts)]


def run_all(gen: Generator, requests, **kw) -> dict:
    out = {}
    for batch in gen.generate(requests, **kw):
        for r in batch:
            out[r.key] = r
    return out


def one_at_a_time(model, tok, prompt: str, n: int) -> str:
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        ids = model.generate(**enc, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
    return tok.decode(ids[0, enc.input_ids.shape[1]:], skip_special_tokens=True)


def test_batched_greedy_equals_one_at_a_time(model, tok):
    gen = Generator(model, tok, torch.device("cpu"), max_batch=4)
    got = run_all(gen, reqs(PROMPTS, greedy(12)))
    assert len(got) == len(PROMPTS)
    for i, p in enumerate(PROMPTS):
        assert got[f"k{i}"].text == one_at_a_time(model, tok, p, 12), p
        assert got[f"k{i}"].finish in ("eos", "length")
    # a batch mixing very different prompt lengths really used left padding
    assert max(len(tok(p).input_ids) for p in PROMPTS) > 3 * min(len(tok(p).input_ids) for p in PROMPTS)


def test_stop_strings_truncate_and_stop_rows(model, tok):
    gen = Generator(model, tok, torch.device("cpu"))
    free = run_all(gen, reqs(PROMPTS, greedy(12)))
    text0 = free["k0"].text
    words = text0.split()
    assert len(words) >= 4
    stop = words[2]  # the third generated word of row 0 becomes a stop string
    stopped = run_all(gen, reqs(PROMPTS, greedy(12, (stop,))))
    for i in range(len(PROMPTS)):
        full, r = free[f"k{i}"].text, stopped[f"k{i}"]
        expect, hit = truncate_at_stop(full, (stop,))
        assert r.text == expect
        assert stop not in r.text
        if hit:
            assert r.finish == "stop"
            assert r.n_tokens < free[f"k{i}"].n_tokens or free[f"k{i}"].finish != "length"
    assert stopped["k0"].finish == "stop"
    assert stopped["k0"].n_tokens <= 3


def test_chunks_coalesced_and_equal_final_text(model, tok):
    gen = Generator(model, tok, torch.device("cpu"), flush_every=0.05)
    calls: list[list[tuple[str, str]]] = []
    got = run_all(gen, reqs(PROMPTS * 3, greedy(24)), on_chunks=calls.append)
    total_tokens = sum(r.n_tokens for r in got.values())
    assert total_tokens > 50
    assert 1 <= len(calls) < total_tokens / 4  # one callback per flush for a whole batch
    streamed: dict[str, str] = {}
    for call in calls:
        assert len({k for k, _ in call}) == len(call)  # one chunk per sequence per callback
        for k, t in call:
            streamed[k] = streamed.get(k, "") + t
    for k, r in got.items():
        assert streamed.get(k, "") == r.text
    assert gen.tokens_streamed == total_tokens  # the live tok/s counter saw every decoded token


def test_chunks_equal_final_text_with_stop_strings(model, tok):
    gen = Generator(model, tok, torch.device("cpu"))
    free = run_all(gen, reqs(PROMPTS, greedy(12)))
    stop = free["k1"].text.split()[3]
    calls: list[list[tuple[str, str]]] = []
    got = run_all(gen, reqs(PROMPTS, greedy(12, (stop,))), on_chunks=calls.append)
    streamed: dict[str, str] = {}
    for call in calls:
        for k, t in call:
            streamed[k] = streamed.get(k, "") + t
    for k, r in got.items():
        assert streamed.get(k, "") == r.text


def test_cancel_between_steps(model, tok):
    gen = Generator(model, tok, torch.device("cpu"), max_batch=2)
    steps = {"n": 0}
    real_forward = model.forward

    def counting_forward(*a, **kw):
        steps["n"] += 1
        return real_forward(*a, **kw)

    polls = {"n": 0}

    def should_stop() -> bool:
        polls["n"] += 1
        return polls["n"] > 3  # 1 before the first batch, then 2 decoding steps

    model.forward = counting_forward
    try:
        with pytest.raises(Cancelled):
            run_all(gen, reqs(PROMPTS, greedy(30)), should_stop=should_stop)
    finally:
        del model.forward
    assert 1 <= steps["n"] < 30  # stopped mid-batch, long before max_new_tokens


def test_cancel_before_any_batch(model, tok):
    gen = Generator(model, tok, torch.device("cpu"))
    batches: list = []
    with pytest.raises(Cancelled):
        run_all(gen, reqs(PROMPTS, greedy(5)), should_stop=lambda: True, on_batch=batches.append)
    assert batches == []


def test_oom_backoff_halves_and_returns_everything(model, tok, monkeypatch):
    gen = Generator(model, tok, torch.device("cpu"), max_batch=8)
    prompts = PROMPTS + PROMPTS[:2]  # 8 requests, one planned batch
    expected = run_all(Generator(model, tok, torch.device("cpu"), max_batch=1), reqs(prompts, greedy(8)))
    real_generate = model.generate
    sizes: list[int] = []

    def flaky_generate(*a, **kw):
        n = kw["input_ids"].shape[0]
        sizes.append(n)
        if n > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_generate(*a, **kw)

    monkeypatch.setattr(model, "generate", flaky_generate)
    got = run_all(gen, reqs(prompts, greedy(8)))
    assert sizes[:3] == [8, 4, 2]
    assert max(s for s in sizes if s <= 2) == 2 and 8 in sizes
    assert set(got) == set(expected)
    assert {k: r.text for k, r in got.items()} == {k: r.text for k, r in expected.items()}
    assert gen.max_batch == 2  # later plans start from the size that fitted


def test_non_oom_errors_propagate(model, tok, monkeypatch):
    gen = Generator(model, tok, torch.device("cpu"))

    def broken(*a, **kw):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(model, "generate", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_all(gen, reqs(PROMPTS, greedy(4)))


def test_sampling_reproducible_for_same_seed_and_batch(model, tok):
    d = Decoding(max_new_tokens=12, temperature=1.0, n=3, top_p=1.0)
    rs = [GenRequest(f"p{i}-s{s}", p, d, sample_index=s, seed=7) for i, p in enumerate(PROMPTS[:3]) for s in range(3)]
    a = run_all(Generator(model, tok, torch.device("cpu")), rs)
    torch.manual_seed(12345)  # global RNG state must not matter
    b = run_all(Generator(model, tok, torch.device("cpu")), rs)
    assert {k: r.text for k, r in a.items()} == {k: r.text for k, r in b.items()}
    texts = {r.text for r in a.values()}
    assert len(texts) > 3  # samples actually differ
    other = [GenRequest(r.key, r.prompt, d, r.sample_index, seed=8) for r in rs]
    c = run_all(Generator(model, tok, torch.device("cpu")), other)
    assert {k: r.text for k, r in a.items()} != {k: r.text for k, r in c.items()}


def test_batch_seed_is_stable_across_processes():
    # derived with sha256, not Python's per-process salted hash(): same value in every process
    rs = [GenRequest("abc", "p", Decoding(8, temperature=0.7), 0, 3)]
    assert batch_seed(rs) == batch_seed(list(rs))
    assert batch_seed(rs) == 1192880447


def test_plan_groups_by_decoding_and_sorts_by_length(model, tok):
    gen = Generator(model, tok, torch.device("cpu"), max_batch=3)
    d1, d2, d3 = greedy(8), greedy(16), Decoding(8, temperature=0.7)
    rs = [GenRequest(f"a{i}", p, d1) for i, p in enumerate(PROMPTS)]
    rs += [GenRequest(f"b{i}", p, d2) for i, p in enumerate(PROMPTS[:4])]
    rs += [GenRequest(f"c{i}", p, d3) for i, p in enumerate(PROMPTS[:2])]
    plan = gen.plan(rs)
    assert sorted(r.key for b in plan for r in b) == sorted(r.key for r in rs)
    for b in plan:
        assert len(b) <= 3
        assert len({r.decoding for r in b}) == 1
    # within a decoding group, batches come in ascending prompt length
    for d in (d1, d2, d3):
        lengths = [len(tok(r.prompt).input_ids) for b in plan for r in b if r.decoding == d]
        assert lengths == sorted(lengths)


def test_plan_cpu_token_budget(model, tok):
    gen = Generator(model, tok, torch.device("cpu"))
    long_d = Decoding(max_new_tokens=4000)
    plan = gen.plan([GenRequest(f"x{i}", "the cat", long_d) for i in range(40)])
    assert all(len(b) * 4000 <= 32 * 768 or len(b) == 1 for b in plan)


def test_render_messages_uses_template_and_falls_back(tok):
    msgs = (Message("system", "be nice"), Message("user", "the cat"))
    assert render_messages(tok, msgs) == "system : be nice user : the cat assistant :"

    class NoTemplate:
        chat_template = None

    assert render_messages(NoTemplate(), msgs).endswith("Assistant:")


def test_completion_prompt_is_rendered_verbatim(tok):
    """A raw completion prompt (MMLU) skips the chat template; BOS only where tokenizer(text) adds one."""
    msgs = completion_messages("the cat sat on the")
    assert not adds_bos(tok) and render_messages(tok, msgs) == "the cat sat on the"

    t = Tokenizer(models.WordLevel(unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    t.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=["<pad>", "<eos>", "<unk>", "<bos>"]))
    bos_id = t.token_to_id("<bos>")
    t.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos_id)])
    with_bos = PreTrainedTokenizerFast(tokenizer_object=t, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>",
                                       bos_token="<bos>")
    with_bos.chat_template = TEMPLATE
    assert adds_bos(with_bos)
    rendered = render_messages(with_bos, msgs)
    assert rendered == "<bos>the cat sat on the"
    # tokenized the engine's way (no special tokens added) it equals plain tokenizer(text)
    assert with_bos(rendered, add_special_tokens=False).input_ids == with_bos("the cat sat on the").input_ids


def test_truncate_at_stop_earliest():
    assert truncate_at_stop("abc STOP def END", ("END", "STOP")) == ("abc ", True)
    assert truncate_at_stop("abc", ("", "x")) == ("abc", False)


def test_plan_limits_padding_waste_on_cpu(model, tok):
    gen = Generator(model, tok, torch.device("cpu"))
    short = "the cat"
    long = " ".join(["one two three four five six seven eight nine ten"] * 40)  # 400 tokens
    plan = gen.plan([GenRequest(f"s{i}", short, greedy(4)) for i in range(5)] + [GenRequest("l", long, greedy(4))])
    assert [len(b) for b in plan] == [5, 1]  # the long prompt does not pad five short ones to 400 tokens


# -- shared prompt prefixes ------------------------------------------------------------
# A 40-word header shared by every prompt (the word-level tokenizer makes one token per word),
# followed by suffixes of different lengths: the planner computes the header's KV cache once.
HEADER = " ".join((SENTENCES[4] + " " + SENTENCES[3]) .split() * 3)[:400]
SUFFIXES = ["the cat", "a dog ran in the park : yes", "user : the answer", "mat", "one two three four five six"]


def test_shared_prefix_batch_is_planned_and_greedy_identical(model, tok):
    prompts = [f"{HEADER} {s}" for s in SUFFIXES] + ["the cat sat"]
    assert len(tok(HEADER).input_ids) >= 40
    gen = Generator(model, tok, torch.device("cpu"), max_batch=8)
    planned = gen._plan(reqs(prompts, greedy(10)))
    shared = [b for b in planned if b.prefix_len]
    assert len(shared) == 1 and len(shared[0].items) == len(SUFFIXES)
    assert shared[0].prefix_len >= len(tok(HEADER).input_ids)
    assert [r.key for b in planned if not b.prefix_len for r in b.items] == [f"k{len(SUFFIXES)}"]
    got = run_all(gen, reqs(prompts, greedy(10)))
    plain = run_all(Generator(model, tok, torch.device("cpu"), max_batch=8, share_prefixes=False),
                    reqs(prompts, greedy(10)))
    for i, p in enumerate(prompts):
        expect = one_at_a_time(model, tok, p, 10)
        assert got[f"k{i}"].text == expect, p
        assert plain[f"k{i}"].text == expect, p
        assert got[f"k{i}"].n_tokens == plain[f"k{i}"].n_tokens


def test_shared_prefix_is_computed_once_per_cluster(model, tok):
    prompts = [f"{HEADER} {s}" for s in SUFFIXES]
    gen = Generator(model, tok, torch.device("cpu"), max_batch=2)  # 3 batches of one cluster
    calls: list[tuple[int, int]] = []

    def count(module, args, kwargs):
        ids = kwargs.get("input_ids")
        if ids is not None:
            calls.append(tuple(ids.shape))

    handle = model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        got = run_all(gen, reqs(prompts, greedy(3)))
    finally:
        handle.remove()
    assert len(got) == len(prompts)
    prefix_len = gen._plan(reqs(prompts, greedy(3)))[0].prefix_len
    assert calls.count((1, prefix_len)) == 1  # one prefix forward serves all three batches
    assert all(shape[1] < prefix_len for shape in calls if shape != (1, prefix_len))  # rows never re-read it
    assert gen._prefix is None  # released when generation ends


def test_samples_of_one_prompt_share_it(model, tok):
    # 5 samples share 4 x 52 prompt tokens: more than a batch of 6 decoding steps costs (24 each)
    d = Decoding(max_new_tokens=6, temperature=0.7, n=5)
    prompt = f"{HEADER} the cat"
    rs = [GenRequest(f"s{i}", prompt, d, sample_index=i, seed=5) for i in range(5)]
    gen = Generator(model, tok, torch.device("cpu"))
    (batch,) = gen._plan(rs)
    assert batch.prefix_len == len(tok(prompt).input_ids) - 1
    first = run_all(gen, rs)
    again = run_all(Generator(model, tok, torch.device("cpu")), rs)
    assert {k: r.text for k, r in first.items()} == {k: r.text for k, r in again.items()}  # seeded


def test_shared_prefix_survives_oom_backoff(model, tok, monkeypatch):
    prompts = [f"{HEADER} {s}" for s in SUFFIXES]
    gen = Generator(model, tok, torch.device("cpu"), max_batch=8)
    real = gen._run
    sizes: list[int] = []

    def flaky(batch, on_chunks, should_stop):
        sizes.append(len(batch.items))
        if len(batch.items) > 2:
            raise torch.OutOfMemoryError("CPU out of memory (simulated)")
        return real(batch, on_chunks, should_stop)

    monkeypatch.setattr(gen, "_run", flaky)
    got = run_all(gen, reqs(prompts, greedy(6)))
    assert sizes == [5, 2, 3, 1, 2]  # halved until it fits, keeping the shared prefix
    for i, p in enumerate(prompts):
        assert got[f"k{i}"].text == one_at_a_time(model, tok, p, 6)


def test_long_sampled_generations_batch_across_prompts(model, tok):
    # toxicity-like: 3 samples of each of 4 prompts, 150 new tokens; sharing each prompt would
    # save ~2 x 40 prompt tokens but decode in batches of 3; the planner keeps one batch of 12
    d = Decoding(max_new_tokens=150, temperature=0.7, n=3)
    prompts = [f"{HEADER} {s}" for s in SUFFIXES[:4]]
    rs = [GenRequest(f"p{j}s{i}", p, d, sample_index=i) for j, p in enumerate(prompts) for i in range(3)]
    planned = Generator(model, tok, torch.device("cpu"))._plan(rs)
    assert [len(b.items) for b in planned] == [12]


def test_sliding_window_models_fall_back_to_full_prompts(tok):
    # a sliding-window cache cannot take a precomputed prefix safely: the generator must notice,
    # generate the full prompts (same outputs as one at a time) and not retry the prefix per batch
    from transformers import MistralConfig, MistralForCausalLM

    model = tiny_causal_lm(tok, MistralConfig, MistralForCausalLM, sliding_window=16)
    prompts = [f"{HEADER} {s}" for s in SUFFIXES]
    gen = Generator(model, tok, torch.device("cpu"), max_batch=2)
    prefix_len = gen._plan(reqs(prompts, greedy(6)))[0].prefix_len
    assert prefix_len > 40
    calls: list[tuple[int, int]] = []
    handle = model.register_forward_pre_hook(
        lambda m, a, k: calls.append(tuple(k["input_ids"].shape)) if k.get("input_ids") is not None else None,
        with_kwargs=True)
    try:
        got = run_all(gen, reqs(prompts, greedy(6)))
    finally:
        handle.remove()
    assert calls.count((1, prefix_len)) == 1  # one (discarded) prefix pass for the three batches
    for i, p in enumerate(prompts):
        assert got[f"k{i}"].text == one_at_a_time(model, tok, p, 6), p


def test_gpu_batches_are_sized_by_free_memory_and_a_prefill_token_budget(monkeypatch):
    from types import SimpleNamespace

    from ctrust_tui.engine import device as device_mod
    from ctrust_tui.engine.generate import GPU_PREFILL_TOKENS, Generator

    cfg = SimpleNamespace(num_hidden_layers=30, num_key_value_heads=3, num_attention_heads=9, hidden_size=576,
                          head_dim=64, vocab_size=49152)
    model = SimpleNamespace(config=cfg, generation_config=SimpleNamespace(eos_token_id=0),
                            prepare_inputs_for_generation=lambda **kw: kw)
    tok = SimpleNamespace(eos_token_id=0)
    gen = Generator(model, tok, torch.device("cuda"))
    monkeypatch.setattr(device_mod, "free_memory_bytes", lambda device: 80 * 2**30)
    short, long_ = gen._batch_limit(100, 100, 16), gen._batch_limit(4000, 4000, 16)
    assert short == GPU_PREFILL_TOKENS // 100 and long_ == GPU_PREFILL_TOKENS // 4000  # the token budget binds
    monkeypatch.setattr(device_mod, "free_memory_bytes", lambda device: 64 * 2**20)
    assert 1 <= gen._batch_limit(100, 100, 16) < short  # little free memory: the KV budget binds
