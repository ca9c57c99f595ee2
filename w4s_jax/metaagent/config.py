"""Settings of the tiny meta-agent build (corpus, tokenizer, model, warm-start training).

`tiny_meta_agent_config()` is what the quickstart embeds; every key takes part in the cache key (see
build.py), so changing any of them builds a new model instead of reusing a stale one.
"""
from __future__ import annotations

import ml_collections

from .tokenizer import DEFAULT_WINDOW


def tiny_meta_agent_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.corpus = ml_collections.ConfigDict()
    c.corpus.tasks = "synth_arith,synth_units"   # states of these tasks (comma-separated registry names)
    c.corpus.examples = 1920      # (state, action) records: one epoch of steps x batch_size
    c.corpus.max_history = 4      # earlier turns in a state: 0..max_history
    c.corpus.tokenizer_examples = 300   # records the tokenizer is trained on (the first ones)

    c.tokenizer = ml_collections.ConfigDict()
    c.tokenizer.vocab_size = 2048  # an upper bound: the corpus has fewer distinct words
    # the chat template's window over long conversations (characters; see tokenizer.py)
    c.tokenizer.window = ml_collections.ConfigDict(dict(DEFAULT_WINDOW))

    c.model = ml_collections.ConfigDict()
    c.model.hidden_size = 128
    c.model.intermediate_size = 384
    c.model.num_layers = 2
    c.model.num_heads = 4
    c.model.num_kv_heads = 2
    c.model.head_dim = 32
    c.model.rope_theta = 10000.0
    c.model.context = 1024        # max_position_embeddings: the longest (windowed) prompt + reply it serves

    c.train = ml_collections.ConfigDict()
    c.train.steps = 240
    c.train.batch_size = 8
    c.train.lr = 1e-2
    c.train.warmup_steps = 10
    c.train.max_len = 544         # tokens per example: a windowed state (<= ~210) and a reply (<= ~335)
    c.train.keep_head = 96        # if a state still does not fit: its first tokens are kept (system and task)
    c.train.min_bucket = 544      # one length bucket: one compiled step
    return c
