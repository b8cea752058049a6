"""Continuous batching (engine/continuous.py) on the tiny random Llama of test_generate: the same
contract as the static engine, and the same greedy tokens."""

from __future__ import annotations

import functools

import pytest

torch = pytest.importorskip("torch")

from test_generate import PROMPTS, greedy, make_tok, one_at_a_time, reqs, run_all, tiny_causal_lm  # noqa: E402

from ctrust_tui.backend import GenRequest  # noqa: E402
from ctrust_tui.engine.continuous import (  # noqa: E402
    CPU_CONTINUOUS_MAX_REQUESTS,
    MIXED,
    ContinuousGenerator,
    resolve_scheduler,
    uses_continuous,
)
from ctrust_tui.engine.generate import SHORT_ANSWER_MAX, Generator  # noqa: E402
from ctrust_tui.errors import Cancelled  # noqa: E402
from ctrust_tui.trust.types import Decoding  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tok():
    return make_tok()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_causal_lm(tok, initializer_range=0.2)  # the same seeded weights as test_generate's


def test_greedy_equals_one_at_a_time_and_the_static_engine(model, tok):
    got = run_all(ContinuousGenerator(model, tok, CPU), reqs(PROMPTS, greedy(12)))
    static = run_all(Generator(model, tok, CPU), reqs(PROMPTS, greedy(12)))
    assert set(got) == {f"k{i}" for i in range(len(PROMPTS))}
    for i, p in enumerate(PROMPTS):
        r = got[f"k{i}"]
        assert r.text == one_at_a_time(model, tok, p, 12) == static[r.key].text, p
        assert (r.finish, r.n_tokens) == (static[r.key].finish, static[r.key].n_tokens)
    assert model.config._attn_implementation == "sdpa"  # the model is left as it was for the next user


def test_a_small_token_budget_interleaves_prefill_and_decode(model, tok):
    """A step budget below the longest prompt: prompts are prefilled in chunks between decode steps
    of rows already running, and the tokens do not change."""
    gen = ContinuousGenerator(model, tok, CPU, step_tokens=8)
    got = run_all(gen, reqs(PROMPTS, greedy(10)))
    assert max(len(tok(p).input_ids) for p in PROMPTS) > 8
    for i, p in enumerate(PROMPTS):
        assert got[f"k{i}"].text == one_at_a_time(model, tok, p, 10), p


def test_stop_strings_streaming_and_row_sets(model, tok):
    full = run_all(ContinuousGenerator(model, tok, CPU), reqs(PROMPTS, greedy(16)))
    word = next(w for r in full.values() for w in r.text.split()[1:2])  # a word some output contains
    chunks: list[tuple[str, str]] = []
    row_sets: list[list[str]] = []
    got = run_all(ContinuousGenerator(model, tok, CPU, flush_every=0.0), reqs(PROMPTS, greedy(16, stop=(word,))),
                  on_chunks=chunks.extend, on_batch=row_sets.append)
    hit = [k for k, r in full.items() if word in r.text]
    assert hit
    for k in hit:
        assert got[k].finish == "stop" and got[k].text == full[k].text[:full[k].text.find(word)]
    for k in set(full) - set(hit):
        assert got[k].text == full[k].text
    streamed: dict[str, str] = {}
    for k, t in chunks:
        streamed[k] = streamed.get(k, "") + t
    assert all(streamed.get(k, "") == r.text for k, r in got.items())
    assert row_sets and {k for s in row_sets for k in s} == set(got)  # every request reported as running


def test_sampling_reproducible_and_seeded(model, tok):
    d = Decoding(max_new_tokens=12, temperature=1.0, n=3, top_p=1.0)
    rs = [GenRequest(f"p{i}-s{s}", p, d, sample_index=s, seed=7) for i, p in enumerate(PROMPTS[:3]) for s in range(3)]
    torch.manual_seed(1)
    before = torch.rand(1)
    torch.manual_seed(1)
    a = run_all(ContinuousGenerator(model, tok, CPU), rs)
    assert torch.equal(torch.rand(1), before)  # the caller's RNG is untouched
    b = run_all(ContinuousGenerator(model, tok, CPU), rs)
    assert {k: r.text for k, r in a.items()} == {k: r.text for k, r in b.items()}
    assert len({r.text for r in a.values()}) > 3
    c = run_all(ContinuousGenerator(model, tok, CPU), [GenRequest(r.key, r.prompt, d, r.sample_index, 8) for r in rs])
    assert {k: r.text for k, r in a.items()} != {k: r.text for k, r in c.items()}


def test_cancel_is_a_hard_stop_and_raises(model, tok, monkeypatch):
    """A cancel stops transformers' thread after its current step: the flushing stop first finished every
    queued request (over 10 s of sampled decodes on a 2-core CPU), the join timed out, and the thread then
    printed a traceback beside "run cancelled". A finished group stops normally."""
    from transformers.generation.continuous_batching.continuous_api import ContinuousBatchingManager

    calls: list[dict] = []
    real = ContinuousBatchingManager.stop

    @functools.wraps(real)  # keeps the signature the engine inspects
    def spy(self, *args, **kwargs):
        calls.append(dict(kwargs))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ContinuousBatchingManager, "stop", spy)
    polls = {"n": 0}

    def should_stop() -> bool:
        polls["n"] += 1
        return polls["n"] > 2

    with pytest.raises(Cancelled):
        run_all(ContinuousGenerator(model, tok, CPU), reqs(PROMPTS, greedy(200)), should_stop=should_stop)
    assert calls[0].get("hard_stop") is True and calls[0]["timeout"] >= 60
    calls.clear()
    # the manager was stopped: the model generates normally afterwards
    assert run_all(ContinuousGenerator(model, tok, CPU), reqs(PROMPTS[:1], greedy(4)))["k0"].text == \
        one_at_a_time(model, tok, PROMPTS[0], 4)
    assert not calls[0].get("hard_stop")


def test_groups_by_decoding_and_results_arrive_in_batches(model, tok):
    rs = reqs(PROMPTS[:3], greedy(6)) + [GenRequest(f"j{i}", p, greedy(9)) for i, p in enumerate(PROMPTS[3:])]
    batches = list(ContinuousGenerator(model, tok, CPU).generate(rs))
    assert sorted(r.key for b in batches for r in b) == sorted(r.key for r in rs)
    assert len(batches) >= 2  # one yield per decoding group at least
    for r in (r for b in batches for r in b):
        assert r.n_tokens <= (6 if r.key.startswith("k") else 9)


@pytest.mark.parametrize(("name", "device", "want"), [("auto", "cuda", "continuous"), ("auto", "cpu", MIXED),
                                                       ("auto", "mps", "static"), ("static", "cuda", "static"),
                                                       ("continuous", "cpu", "continuous")])
def test_resolve_scheduler(name, device, want):
    assert resolve_scheduler(name, device) == want


def test_mixed_routes_long_decodes_to_continuous_batching():
    short, long = Decoding(max_new_tokens=SHORT_ANSWER_MAX), Decoding(max_new_tokens=SHORT_ANSWER_MAX + 1)
    assert not uses_continuous(MIXED, short) and uses_continuous(MIXED, long)
    assert uses_continuous("continuous", short) and not uses_continuous("static", long)
    # a large long-decode group goes to the static engine on a CPU (the paged path's cost grows with the rows)
    assert uses_continuous(MIXED, long, CPU_CONTINUOUS_MAX_REQUESTS)
    assert not uses_continuous(MIXED, long, CPU_CONTINUOUS_MAX_REQUESTS + 1)
    assert uses_continuous("continuous", long, 10_000)  # asked for explicitly: always


def test_backend_auto_on_cpu_sends_a_large_long_decode_group_to_static_batches(model, tok):
    """125 sampled 150-token requests in one continuous group finished 5 outputs in 27 minutes on the 2-core
    CPU where static batches finished ~10 a minute: `auto` counts the group, not only its token budget."""
    from pathlib import Path

    from ctrust_tui.compress.spec import parse_spec
    from ctrust_tui.engine.backend import EngineBackend
    from ctrust_tui.engine.loader import LoadedModel

    loaded = LoadedModel(model=model, tokenizer=tok, device=CPU, dtype=torch.float32, path=Path("tiny"),
                         spec=parse_spec("none"), load_seconds=0.0, memory_bytes=0, dtype_reason="test")
    backend = EngineBackend(loaded, model_fingerprint="f", compression="none")
    n = CPU_CONTINUOUS_MAX_REQUESTS + 1
    long = greedy(SHORT_ANSWER_MAX + 2)
    big = [GenRequest(f"b{i}", PROMPTS[i % len(PROMPTS)], long) for i in range(n)]
    small = [GenRequest(f"s{i}", p, greedy(SHORT_ANSWER_MAX + 3)) for i, p in enumerate(PROMPTS[:2])]
    got = {r.key: r for b in backend.generate(big + small) for r in b}
    assert set(got) == {r.key for r in big + small}
    want = one_at_a_time(model, tok, PROMPTS[0], SHORT_ANSWER_MAX + 2)
    assert got["b0"].text == want
    # the small group alone ran on continuous batching: its streamed tokens are the continuous engine's
    assert backend._cb.tokens_streamed == sum(got[r.key].n_tokens for r in small)


def test_backend_auto_on_cpu_sends_each_decoding_to_its_scheduler(model, tok):
    from pathlib import Path

    from ctrust_tui.compress.spec import parse_spec
    from ctrust_tui.engine.backend import EngineBackend
    from ctrust_tui.engine.loader import LoadedModel

    loaded = LoadedModel(model=model, tokenizer=tok, device=CPU, dtype=torch.float32, path=Path("tiny"),
                         spec=parse_spec("none"), load_seconds=0.0, memory_bytes=0, dtype_reason="test")
    backend = EngineBackend(loaded, model_fingerprint="f", compression="none")
    assert backend.info["scheduler"] == MIXED
    rs = reqs(PROMPTS[:3], greedy(4)) + [GenRequest(f"l{i}", p, greedy(SHORT_ANSWER_MAX + 2))
                                         for i, p in enumerate(PROMPTS[3:])]
    got = {r.key: r for b in backend.generate(rs) for r in b}
    assert set(got) == {r.key for r in rs}
    assert backend._gen.tokens_streamed > 0 and backend._cb.tokens_streamed > 0
    assert backend.tokens_streamed == backend._gen.tokens_streamed + backend._cb.tokens_streamed
    for i, p in enumerate(PROMPTS[3:]):
        assert got[f"l{i}"].text == one_at_a_time(model, tok, p, SHORT_ANSWER_MAX + 2)


def test_resolve_scheduler_rejects_unknown():
    with pytest.raises(ValueError, match="static"):
        resolve_scheduler("fast", "cpu")


def test_a_model_without_continuous_batching_falls_back_to_static_batches(model, tok, monkeypatch):
    from pathlib import Path

    from ctrust_tui.compress.spec import parse_spec
    from ctrust_tui.engine.backend import EngineBackend
    from ctrust_tui.engine.loader import LoadedModel

    def unsupported(*a, **kw):
        raise NotImplementedError("no paged attention for this architecture")

    monkeypatch.setattr(model, "init_continuous_batching", unsupported, raising=False)
    loaded = LoadedModel(model=model, tokenizer=tok, device=CPU, dtype=torch.float32, path=Path("tiny"),
                         spec=parse_spec("none"), load_seconds=0.0, memory_bytes=0, dtype_reason="test")
    backend = EngineBackend(loaded, model_fingerprint="f", compression="none", scheduler="continuous")
    got = {r.key: r for b in backend.generate(reqs(PROMPTS, greedy(6))) for r in b}
    assert {k: r.text for k, r in got.items()} == {f"k{i}": one_at_a_time(model, tok, p, 6)
                                                   for i, p in enumerate(PROMPTS)}
    assert backend.info["scheduler"] == "static" and "paged attention" in backend.info["scheduler_note"]


def test_cpu_kv_cache_is_sized_for_the_workload_within_a_ram_share(model, tok, monkeypatch):
    import ctrust_tui.engine.continuous as cont

    gen = ContinuousGenerator(model, tok, CPU)
    group = reqs(PROMPTS, greedy(100))
    ids = [tok(r.prompt, add_special_tokens=False).input_ids for r in group]
    per_token = gen._kv_bytes_per_token()
    assert per_token == 2 * 2 * 2 * 16 * 4  # 2 layers, 2 KV heads of 16 dims, keys + values, fp32
    _, roomy = gen._configs(group, ids)
    assert roomy.num_blocks == max(16, sum(-(-(len(x) + 100) // cont.PAGE_SIZE) + 1 for x in ids))
    monkeypatch.setattr(cont, "available_ram_bytes", lambda: 4 * cont.PAGE_SIZE * per_token * 3)  # 3 pages fit
    _, tight = gen._configs(group * 20, ids * 20)
    longest = max(-(-(len(x) + 100) // cont.PAGE_SIZE) + 1 for x in ids)
    assert tight.num_blocks == max(16, longest, 3)

