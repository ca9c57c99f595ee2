"""A tiny byte-level BPE tokenizer with Qwen's special tokens and a ChatML chat template, built in memory
(no hub access), for tests of anything that goes messages -> ids -> text."""
from __future__ import annotations

import functools

CHATML = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
          "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_CORPUS = [
    "You are a helpful assistant that writes Python workflows.",
    "def solver(agent, task):\n    return agent.call_llm(messages=[task])[0]",
    "The answer is 42. Think step by step, then vote on the most common answer.",
    "system user assistant feedback accuracy validation history workflow",
] * 4


@functools.lru_cache(maxsize=None)
def make_tiny_tokenizer(vocab_size: int = 320):
    """PreTrainedTokenizerFast: ids 0..2 are <|endoftext|> (pad), <|im_start|>, <|im_end|> (eos); every id is
    < vocab_size, so it fits the `tiny` model preset (vocab 512)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>"])
    fast.chat_template = CHATML
    return fast
