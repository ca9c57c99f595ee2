"""Chat messages -> prompt ids through the tokenizer's own chat template."""
import pytest

from tiny_tokenizer import make_tiny_tokenizer
from w4s_jax.models import chat_prompt_ids


def test_chat_prompt_ends_with_generation_prompt():
    tok = make_tiny_tokenizer()
    msgs = [{"role": "system", "content": "You write workflows."}, {"role": "user", "content": "Task: add."}]
    ids = chat_prompt_ids(tok, msgs)
    text = tok.decode(ids)
    assert text.startswith("<|im_start|>system\nYou write workflows.<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n")
    assert ids == tok.encode(text, add_special_tokens=False)
    without = chat_prompt_ids(tok, msgs, add_generation_prompt=False)
    assert ids[: len(without)] == without and len(without) < len(ids)


def test_bad_messages_are_rejected():
    tok = make_tiny_tokenizer()
    with pytest.raises(ValueError, match="chat message 1 must be a dict with 'role' and 'content'"):
        chat_prompt_ids(tok, [{"role": "user", "content": "hi"}, {"text": "no role"}])
