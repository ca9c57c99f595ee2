"""Shared pieces of the serving tests: a tiny transformers checkpoint with a chat tokenizer, and the
transformers computations replies are checked against.

Every test request keeps its rendered prompt under 32 tokens and asks for at most 24 new tokens, so all
modules share the same few compiled sampler programs (the prompt and budget buckets do not change).
"""
from __future__ import annotations

import numpy as np
import torch

from hf_reference import make_hf_model
from tiny_tokenizer import make_tiny_tokenizer
from w4s_jax.models import chat_prompt_ids
from w4s_jax.serve.protocol import _BYTE_LEVEL

VOCAB = 320          # the tiny tokenizer's ids exactly: every sampled id is a real token
NEW = 24             # new-token budget of the test requests
SAMPLED = dict(n=3, temperature=0.8, top_p=0.9)  # the seeded setting every module uses
CONVS = [
    [{"role": "user", "content": "Solve 6*7."}],
    [{"role": "system", "content": "You write workflows."}, {"role": "user", "content": "Vote."}],
    [{"role": "user", "content": "def solver(agent, task):"}],
    [{"role": "user", "content": "The answer is 42. Think step by step."}],
]
_UNICODE = {b: c for c, b in _BYTE_LEVEL.items()}


def make_checkpoint(path, seed: int = 3):
    """A random Qwen2 checkpoint (transformers) with the tiny chat tokenizer saved next to it. The output row
    of <|im_end|> (id 2) is doubled so that some greedy replies end by themselves: with seed 3, CONVS[0]
    ends after 17 tokens, CONVS[1] and CONVS[2] use the whole budget of NEW tokens."""
    hf = make_hf_model("qwen2", vocab=VOCAB, hidden=64, inter=96, layers=2, heads=4, kv_heads=2, seed=seed)
    with torch.no_grad():
        hf.lm_head.weight[2] *= 2.0
    hf.save_pretrained(path)
    make_tiny_tokenizer().save_pretrained(path)
    return hf


def tokenizer():
    return make_tiny_tokenizer()


def prompt_ids(messages) -> list[int]:
    return chat_prompt_ids(make_tiny_tokenizer(), messages)


def choice_token_ids(choice) -> list[int]:
    """Token ids of a reply, from the exact bytes its logprobs carry (byte-level BPE: one vocabulary string each)."""
    tok = make_tiny_tokenizer()
    return [tok.convert_tokens_to_ids("".join(_UNICODE[b] for b in item.bytes)) for item in choice.logprobs.content]


def hf_greedy(hf, prompt: list[int], new: int, eos: int = 2) -> tuple[list[int], str]:
    """transformers' greedy continuation (eos excluded) and its finish reason."""
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=new,
                          eos_token_id=eos, pad_token_id=0)
    toks = out[0, len(prompt):].tolist()
    if eos in toks:
        return toks[:toks.index(eos)], "stop"
    return toks, "length"


def hf_token_logprobs(hf, prompt: list[int], new: list[int]) -> np.ndarray:
    """log p(new[t] | prompt, new[:t]) under the transformers model."""
    ids = torch.tensor([prompt + new])
    with torch.no_grad():
        logits = hf(input_ids=ids).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    pos = torch.arange(len(prompt) - 1, len(prompt) + len(new) - 1)
    return logp[pos, torch.tensor(new)].numpy()
