"""The tiny meta-agent's tokenizer: exact round trips, the same ids however it is loaded (transformers rebuilds a
qwen2 checkpoint's tokenizer its own way), Qwen's special tokens and the ChatML chat template."""
from __future__ import annotations

import json
import random

import pytest

from w4s_jax.metaagent.corpus import corpus_records
from w4s_jax.metaagent.tokenizer import DEFAULT_SYSTEM, SPECIAL_TOKENS, special_ids, train_tokenizer
from w4s_jax.models import chat_prompt_ids, load_tokenizer
from w4s_jax.tasks import get

TEXTS = [
    "def solver(agent, task):\n    return {\"answer\": str(42)}\n",
    "Lena has 12 shells. She buys 3 bags with 5 in each. 12 + 3 * 5 = 27 -> 20.",
    "tabs\tand   spaces  \n\n\r\n trailing ",
    "unicode: café, naïve, 北京, emoji 🙂, math ∑ x² ≤ 10⁶",
    "specials inline: <|im_start|>user\nhi<|im_end|>\n<|endoftext|>",
    "",
]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    records = list(corpus_records(30, tasks=[get("synth_arith"), get("synth_units")], seed=3))
    texts = [m["content"] for r in records for m in r["messages"]] + [r["action"] for r in records]
    tok = train_tokenizer(texts, 700)
    path = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(path)
    # a qwen2 model config beside it, as in the meta-agent's checkpoint: transformers then picks its Qwen2
    # tokenizer class, which rebuilds the pipeline from the vocabulary and merges
    (path / "config.json").write_text(json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}))
    return tok, str(path), texts


def test_vocabulary_and_special_tokens(tok_dir):
    tok, path, _ = tok_dir
    assert len(tok) <= 700
    assert special_ids(tok) == {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2}
    loaded = load_tokenizer(path)
    assert loaded.eos_token == "<|im_end|>" and loaded.pad_token == "<|endoftext|>"
    for s in SPECIAL_TOKENS:
        assert loaded(s, add_special_tokens=False)["input_ids"] == [special_ids(tok)[s]]


def test_round_trip_and_same_ids_when_loaded(tok_dir):
    tok, path, corpus = tok_dir
    loaded = load_tokenizer(path)
    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(path)
    rng = random.Random(0)
    samples = TEXTS + rng.sample(corpus, 20)
    for text in samples:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert loaded(text, add_special_tokens=False)["input_ids"] == ids
        assert auto(text, add_special_tokens=False)["input_ids"] == ids
        assert loaded.decode(ids) == text
    # the corpus's words are whole tokens: a workflow line costs a handful of ids, not one per byte
    line = '            return_dict_keys=list(keys),\n'
    assert 4 * len(tok(line)["input_ids"]) <= len(line)


def test_chat_template_renders_chatml_like_qwen(tok_dir):
    tok, path, _ = tok_dir
    loaded = load_tokenizer(path)
    msgs = [{"role": "system", "content": "You design workflows."}, {"role": "user", "content": "Task?"},
            {"role": "assistant", "content": "Plan: vote."}, {"role": "user", "content": "Again."}]
    text = loaded.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou design workflows.<|im_end|>\n<|im_start|>user\nTask?<|im_end|>\n"
                    "<|im_start|>assistant\nPlan: vote.<|im_end|>\n<|im_start|>user\nAgain.<|im_end|>\n"
                    "<|im_start|>assistant\n")
    no_system = loaded.apply_chat_template(msgs[1:2], tokenize=False, add_generation_prompt=False)
    assert no_system == f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\nTask?<|im_end|>\n"
    ids = chat_prompt_ids(loaded, msgs)
    assert ids == loaded(text, add_special_tokens=False)["input_ids"]
    header = loaded("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    assert ids[0] == 1 and ids[-len(header):] == header
    assert ids.count(2) == 4   # one <|im_end|> per message


def test_vocab_size_too_small_is_an_error():
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["abc"], 100)


def _windowed_reference(msgs, w, cut="\n[...]\n"):
    """The window rule of tokenizer.py written plainly: a long conversation keeps the system message, the
    first user message's head and tail, and the last message's head and tail; the turns between go."""
    def clip(text, head, tail):
        return text if len(text) <= head + tail + len(cut) else text[:head] + cut + text[-tail:]
    if sum(len(m["content"]) for m in msgs) <= w["min_chars"]:
        return msgs
    first_user = next(i for i, m in enumerate(msgs) if m["role"] == "user")
    out = []
    for i, m in enumerate(msgs):
        if m["role"] == "system":
            out.append(m)
        elif i == first_user:
            out.append({**m, "content": clip(m["content"], w["first_head"], w["first_tail"])})
        elif i == len(msgs) - 1:
            out.append({**m, "content": clip(m["content"], w["last_head"], w["last_tail"])})
    return out


def test_long_conversations_are_windowed_by_characters(tok_dir):
    from w4s_jax.metaagent.tokenizer import DEFAULT_WINDOW, chat_template

    tok, _, _ = tok_dir
    w = {"min_chars": 400, "first_head": 30, "first_tail": 20, "last_head": 40, "last_tail": 25}
    rng = random.Random(1)

    def text(n):
        return "".join(rng.choice("abcdef 12\n") for _ in range(n))
    long = [{"role": "system", "content": "sys " * 10}, {"role": "user", "content": "TASK " + text(300) + " END"},
            {"role": "assistant", "content": text(200)}, {"role": "user", "content": "LAST " + text(250) + " STOP"}]
    short = [{"role": "user", "content": text(100)}, {"role": "assistant", "content": text(90)}]
    for template_window, msgs in ((w, long), (w, short), (w, long[:2]), (None, long)):
        tok.chat_template = chat_template(template_window)
        expected = tok.apply_chat_template(_windowed_reference(msgs, {**DEFAULT_WINDOW, **(template_window or {})}),
                                           tokenize=False, add_generation_prompt=True,
                                           chat_template=chat_template({"min_chars": 10 ** 9}))
        got = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        assert got == expected
    tok.chat_template = chat_template(w)
    got = tok.apply_chat_template(long, tokenize=False, add_generation_prompt=True)
    assert "TASK" in got and "STOP" in got and "[...]" in got and long[2]["content"] not in got
    tok.chat_template = chat_template()
