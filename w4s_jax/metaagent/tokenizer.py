"""The tiny meta-agent's tokenizer: a byte-level BPE trained here on the warm-start corpus (the `tokenizers`
library) with Qwen2's pre-tokenization, Qwen's special tokens, and a ChatML chat template that renders
conversations as Qwen2.5's does, through a window when they are long.

Pre-tokenization is Qwen2's (words, single digits, punctuation runs): transformers rebuilds a qwen2
checkpoint's tokenizer with exactly that pipeline whatever tokenizer.json says, so the trainer, the server
and transformers all encode alike. The corpus has few distinct words, so a vocabulary of ~2k holds them all
whole. Bytes are the base alphabet: every text encodes and decodes exactly.

The window. A conversation whose messages hold more than `min_chars` characters in all is shown as: the
system message, the first user message cut to its first `first_head` and last `first_tail` characters
(the task's name and the closing instruction), and the last message cut to its first `last_head` and last
`last_tail` characters (the last result's accuracy lines and instruction); the turns between are left out
and a cut is marked `[...]`. Shorter conversations render as plain ChatML. Why: a model this small, trained
on windows of environment states (a full state is thousands of tokens), breaks on anything else; and the
trainer's own middle truncation makes every example exactly `max_len` long, so the prompt's length gives
away the reply's length and a small model learns to choose its reply by the prompt's length (measured:
valid replies fell from ~80% to ~3% when the prompt was 40 tokens longer or shorter than in training).
The template cuts by characters, independent of the reply, and the trainer, the server and transformers
all apply it: every prompt the model sees is of the kind it was trained on.

Ids 0, 1, 2 are `<|endoftext|>` (padding), `<|im_start|>` and `<|im_end|>` (end of a turn, the eos).
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Qwen2's pre-tokenization (words, single digits, punctuation runs, whitespace runs).
QWEN_PRETOKENIZE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                    r"\s*[\r\n]+|\s+(?!\S)|\s+")
DEFAULT_SYSTEM = "You are a helpful assistant."
CUT = "\n[...]\n"
DEFAULT_WINDOW = {"min_chars": 3000, "first_head": 100, "first_tail": 70, "last_head": 170, "last_tail": 70}


def chat_template(window: Mapping[str, int] | None = None) -> str:
    """The Jinja chat template (see the module docstring); `window` overrides DEFAULT_WINDOW's sizes."""
    w = {**DEFAULT_WINDOW, **dict(window or {})}
    turn = "{{- '<|im_start|>' + message['role'] + '\\n' + text + '<|im_end|>\\n' }}"

    def cut(head: int, tail: int) -> str:
        return (f"{{%- if text|length > {head + tail + len(CUT)} %}}"
                f"{{%- set text = text[:{head}] + {CUT!r} + text[-{tail}:] %}}{{%- endif %}}")
    return (
        "{%- set ns = namespace(chars=0, first_user=-1) %}"
        "{%- for message in messages %}"
        "{%- set ns.chars = ns.chars + message['content']|length %}"
        "{%- if message['role'] == 'user' and ns.first_user < 0 %}{%- set ns.first_user = loop.index0 %}{%- endif %}"
        "{%- endfor %}"
        f"{{%- set windowed = ns.chars > {w['min_chars']} %}}"
        "{%- if messages and messages[0]['role'] != 'system' %}"
        "{{- '<|im_start|>system\\n" + DEFAULT_SYSTEM + "<|im_end|>\\n' }}"
        "{%- endif %}"
        "{%- for message in messages %}"
        "{%- set text = message['content'] %}"
        "{%- if not windowed or message['role'] == 'system' %}" + turn +
        "{%- elif loop.index0 == ns.first_user %}" + cut(w["first_head"], w["first_tail"]) + turn +
        "{%- elif loop.last %}" + cut(w["last_head"], w["last_tail"]) + turn +
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    )


CHAT_TEMPLATE = chat_template()


def train_tokenizer(texts: Iterable[str], vocab_size: int, window: Mapping[str, int] | None = None):
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
    fast.chat_template = chat_template(window)
    fast.model_max_length = 1 << 30
    return fast


def save_tokenizer(tokenizer, path: str) -> str:
    os.makedirs(path, exist_ok=True)
    tokenizer.save_pretrained(path)
    return path


def special_ids(tokenizer) -> dict[str, int]:
    vocab = tokenizer.get_vocab()
    return {t: int(vocab[t]) for t in SPECIAL_TOKENS}
