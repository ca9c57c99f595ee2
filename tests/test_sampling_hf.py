"""Greedy decoding equals transformers' `generate(do_sample=False)` token for token, from one checkpoint."""
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from hf_reference import make_hf_model
from w4s_jax.models import load_pretrained
from w4s_jax.sampling import generate, sample

NEW = 72
PAD = 0


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf_qwen2")
    hf = make_hf_model("qwen2", vocab=160, hidden=64, inter=96, layers=2, heads=4, kv_heads=2, seed=3)
    hf.save_pretrained(path)
    return hf, load_pretrained(path, dtype=jnp.float32)


def _hf_greedy(hf, prompts, new):
    """Left-padded batch, as transformers expects for decoder-only generation; eos off so every row runs."""
    T = max(map(len, prompts))
    ids = torch.full((len(prompts), T), PAD, dtype=torch.long)
    mask = torch.zeros((len(prompts), T), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, T - len(p):] = torch.tensor(p)
        mask[i, T - len(p):] = 1
    hf.generation_config.eos_token_id = None
    with torch.no_grad():
        out = hf.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=new,
                          min_new_tokens=new, pad_token_id=PAD)
    return out[:, T:].numpy()


def _prompts():
    rng = np.random.default_rng(7)
    return [rng.integers(3, 160, size=n).tolist() for n in (5, 23, 12)]


def test_greedy_equals_transformers_ragged_batch(models):
    hf, model = models
    prompts = _prompts()
    want = _hf_greedy(hf, prompts, NEW)
    got = generate(model, prompts, max_new_tokens=NEW)
    assert [len(g) for g in got] == [1, 1, 1]
    for i in range(len(prompts)):
        assert got[i][0] == want[i].tolist(), f"prompt {i} diverges"
    # A row alone gives the same tokens as inside the ragged batch.
    assert generate(model, [prompts[1]], max_new_tokens=NEW)[0][0] == want[1].tolist()


def test_stop_ids_end_rows_independently(models):
    hf, model = models
    prompts = _prompts()
    want = _hf_greedy(hf, prompts, NEW)
    # A stop id that rows hit at different steps (or never): each row ends just before its first one.
    stop = int(want[0][NEW // 3])
    res = sample(model, prompts, max_new_tokens=NEW, stop_ids=[stop])
    ends = []
    for i, row in enumerate(want.tolist()):
        cut = row.index(stop) if stop in row else NEW
        ends.append(cut)
        assert res.tokens[i][0] == row[:cut]
        assert res.finish_reasons[i][0] == ("stop" if stop in row else "length")
        assert len(res.logprobs[i][0]) == cut
    assert len(set(ends)) > 1, "the test needs rows that stop at different steps"


@pytest.mark.slow
@pytest.mark.parametrize("family,tie", [("qwen2", True), ("qwen3", False), ("llama", False)])
def test_greedy_equals_transformers_other_variants(tmp_path, family, tie):
    hf = make_hf_model(family, vocab=160, hidden=64, inter=96, layers=2, heads=4, kv_heads=2, tie=tie, seed=5)
    hf.save_pretrained(tmp_path)
    model = load_pretrained(tmp_path, dtype=jnp.float32)
    prompts = _prompts()
    got = generate(model, prompts, max_new_tokens=NEW)
    want = _hf_greedy(hf, prompts, NEW)
    assert [g[0] for g in got] == want.tolist()
