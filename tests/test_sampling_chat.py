"""Chat-level sampling: messages through the chat template, decoded replies, stop at <|im_end|> / eos."""
import json

import jax.numpy as jnp
import pytest

from tiny_tokenizer import make_tiny_tokenizer
from w4s_jax.models import chat_prompt_ids, get_preset, init_model
from w4s_jax.sampling import chat_completions, chat_generate, chat_stop_ids, generate, generation_config_stop_ids

CONVS = [[{"role": "system", "content": "You write workflows."}, {"role": "user", "content": "Solve 6*7."}],
         [{"role": "user", "content": "def solver(agent, task):"}],
         [{"role": "user", "content": "The answer is 42."}]]
# The settings tests/test_sampling.py uses, so the compiled programs are shared.
SAMPLED = dict(max_new_tokens=24, temperature=1.0, top_p=0.95, n=5)


@pytest.fixture(scope="module")
def tok():
    return make_tiny_tokenizer()


@pytest.fixture(scope="module")
def model():
    return init_model(get_preset("tiny"), seed=0)


def test_stop_ids_come_from_tokenizer_model_and_generation_config(tok, model, tmp_path):
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert chat_stop_ids(tok) == [im_end]
    assert chat_stop_ids(tok, model) == [im_end]  # the tiny preset has no eos of its own
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [0, im_end, 9999]}))
    assert generation_config_stop_ids(tmp_path) == [0, im_end, 9999]
    assert chat_stop_ids(tok, model, tmp_path) == [im_end, 0]  # out-of-vocabulary ids dropped
    assert generation_config_stop_ids(tmp_path / "absent") == []


def test_chat_replies_are_the_decoded_samples(tok, model):
    comps = chat_completions(model, tok, CONVS, seed=4, **SAMPLED)
    ids = generate(model, [chat_prompt_ids(tok, c) for c in CONVS], stop_ids=chat_stop_ids(tok, model), seed=4,
                   **SAMPLED)
    for per, per_ids in zip(comps, ids):
        assert [c.token_ids for c in per] == per_ids
        for c in per:
            assert c.text == tok.decode(c.token_ids, skip_special_tokens=True)
            assert "<|im_end|>" not in c.text and c.logprob < 0
            assert c.finish_reason == ("length" if len(c.token_ids) == 24 else "stop")
    assert chat_generate(model, tok, CONVS, seed=4, **SAMPLED) == [[c.text for c in per] for per in comps]


def test_reply_stops_at_end_of_turn(tok, model):
    # Make <|im_end|> the model's favourite next token after any "\n": its (tied) embedding becomes a
    # scaled copy of "\n"'s, which is where every chat prompt ends (the assistant header).
    im_end, nl = tok.convert_tokens_to_ids("<|im_end|>"), chat_prompt_ids(tok, CONVS[0])[-1]
    emb = model.embed.get_value()
    patched = init_model(get_preset("tiny"), seed=0)
    patched.embed.set_value(emb.at[im_end].set(4.0 * emb[nl]))
    comps = chat_completions(patched, tok, CONVS, max_new_tokens=8)
    assert [[(c.text, c.token_ids, c.finish_reason) for c in per] for per in comps] == [[("", [], "stop")]] * 3
    # Without the default stop ids the same model goes on writing <|im_end|> tokens until its budget.
    free = chat_completions(patched, tok, CONVS, max_new_tokens=8, stop_ids=[])
    assert free[0][0].token_ids[0] == im_end and free[0][0].finish_reason == "length"


def test_chat_input_errors(tok, model):
    with pytest.raises(ValueError, match="list of conversations"):
        chat_generate(model, tok, CONVS[0], max_new_tokens=4)
    with pytest.raises(ValueError, match="role"):
        chat_generate(model, tok, [[{"content": "no role"}]], max_new_tokens=4)
