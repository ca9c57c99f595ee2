"""The tiny meta-agent's tokenizer: a byte-level BPE trained here on the warm-start corpus (the `tokenizers`
library), with Qwen's special tokens and a ChatML chat template that renders conversations as Qwen2.5's does.

Pre-tokenization splits at line ends only, so a merge may cross spaces and punctuation: lines that recur
in states and workflows (the executor API, the prompt's boilerplate, `temperature=0.7,`, a whole agent
call's keyword line) become one token each. A state of tens of thousands of characters is then a few
thousand tokens and a workflow a few hundred, which is what lets a model this small be trained and sampled
on a laptop. Bytes are the base alphabet, so every text encodes and decodes exactly.

Ids 0, 1, 2 are `<|endoftext|>` (padding), `<|im_start|>` and `<|im_end|>` (end of a turn, the eos).
"""
from __future__ import annotations

import os
from typing import Iterable

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Qwen2's pre-tokenization (words, single digits, punctuation runs, whitespace runs). transformers rebuilds
# a qwen2 checkpoint's tokenizer with exactly this pipeline (NFC, this split, byte-level) whatever
# tokenizer.json says, so training with it keeps what the trainer, the server and transformers encode equal.
QWEN_PRETOKENIZE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                    r"\s*[\r\n]+|\s+(?!\S)|\s+")
DEFAULT_SYSTEM = "You are a helpful assistant."

# ChatML as Qwen2/Qwen2.5 render it: a default system turn when the conversation has none, each message as
# <|im_start|>role\ncontent<|im_end|>\n, and the assistant header as the generation prompt.
CHAT_TEMPLATE = (
    "{%- if messages and messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\n" + DEFAULT_SYSTEM + "<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A PreTrainedTokenizerFast trained on `texts` (ids below `vocab_size`), with the chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"tokenizer vocab_size must be at least {256 + len(SPECIAL_TOKENS)} (the bytes and the "
                         f"special tokens), got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>"], bos_token=None, unk_token=None)
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 1 << 30
    return fast


def save_tokenizer(tokenizer, path: str) -> str:
    os.makedirs(path, exist_ok=True)
    tokenizer.save_pretrained(path)
    return path


def special_ids(tokenizer) -> dict[str, int]:
    vocab = tokenizer.get_vocab()
    return {t: int(vocab[t]) for t in SPECIAL_TOKENS}
