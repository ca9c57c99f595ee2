"""Chat-level sampling: conversations in (rendered by the tokenizer's chat template), completions out."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Sequence

from w4s_jax.models.chat import chat_prompt_ids
from w4s_jax.sampling.sampler import sample

END_OF_TURN = "<|im_end|>"


@dataclasses.dataclass
class Completion:
    text: str
    token_ids: list[int]           # stop token excluded
    finish_reason: str             # "stop" (hit a stop id) or "length" (used max_new_tokens)
    logprob: float                 # sum of the tokens' log-probs under the unfiltered model distribution


def _as_ids(value) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]


def generation_config_stop_ids(model_dir: str | os.PathLike) -> list[int]:
    """eos ids from `<model_dir>/generation_config.json` (an int or a list), [] when the file is absent."""
    path = os.path.join(os.fspath(model_dir), "generation_config.json")
    if not os.path.exists(path):
        return []
    try:
        with open(path) as f:
            return _as_ids(json.load(f).get("eos_token_id"))
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: cannot read eos_token_id ({e!r})") from None


def chat_stop_ids(tokenizer, model=None, model_dir: str | os.PathLike | None = None) -> list[int]:
    """Where a chat reply ends: `<|im_end|>` if the tokenizer has it, the tokenizer's eos, the model
    config's eos, and the eos ids of the checkpoint's generation_config.json (when `model_dir` is given)."""
    ids: list[int] = []
    vocab = tokenizer.get_vocab()
    if END_OF_TURN in vocab:
        ids.append(int(vocab[END_OF_TURN]))
    ids += _as_ids(getattr(tokenizer, "eos_token_id", None))
    if model is not None:
        ids += _as_ids(model.config.eos_token_id)
    if model_dir is not None:
        ids += generation_config_stop_ids(model_dir)
    if model is not None:
        ids = [i for i in ids if i < model.config.vocab_size]
    return list(dict.fromkeys(ids))


def chat_completions(model, tokenizer, conversations: Sequence[Sequence[dict]], *, max_new_tokens: int,
                     temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0, n: int = 1, seed: int = 0,
                     stop_ids: Sequence[int] | None = None, model_dir: str | None = None,
                     skip_special_tokens: bool = True) -> list[list[Completion]]:
    """n completions per conversation (a list of {"role", "content"} messages), all conversations in one
    sampler call. `stop_ids` defaults to `chat_stop_ids(tokenizer, model, model_dir)`."""
    if isinstance(conversations, dict) or (conversations and isinstance(conversations[0], dict)):
        raise ValueError("conversations must be a list of conversations (each a list of messages); "
                         "wrap a single conversation in a list")
    prompts = [chat_prompt_ids(tokenizer, conv) for conv in conversations]
    stops = chat_stop_ids(tokenizer, model, model_dir) if stop_ids is None else list(stop_ids)
    res = sample(model, prompts, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                 top_k=top_k, n=n, seed=seed, stop_ids=stops)
    return [[Completion(tokenizer.decode(toks, skip_special_tokens=skip_special_tokens), toks, reason, sum(lps))
             for toks, reason, lps in zip(res.tokens[i], res.finish_reasons[i], res.logprobs[i])]
            for i in range(len(prompts))]


def chat_generate(model, tokenizer, conversations: Sequence[Sequence[dict]], **kwargs) -> list[list[str]]:
    """Decoded texts, [conversation][sample]; options as `chat_completions`."""
    return [[c.text for c in comps] for comps in chat_completions(model, tokenizer, conversations, **kwargs)]
