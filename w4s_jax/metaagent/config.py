"""Settings of the tiny meta-agent build (corpus, tokenizer, model, warm-start training).

`tiny_meta_agent_config()` is what the quickstart embeds; every key takes part in the cache key (see
build.py), so changing any of them builds a new model instead of reusing a stale one.
"""
from __future__ import annotations

import ml_collections


def tiny_meta_agent_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.corpus = ml_collections.ConfigDict()
    c.corpus.tasks = "synth_arith,synth_units"   # states of these tasks (comma-separated registry names)
    c.corpus.examples = 960       # (state, action) records: one epoch of steps x batch_size
    c.corpus.max_history = 4      # earlier turns in a state: 0..max_history
    c.corpus.tokenizer_examples = 300   # records the tokenizer is trained on (the first ones)

    c.tokenizer = ml_collections.ConfigDict()
    c.tokenizer.vocab_size = 2048  # an upper bound: the corpus has fewer distinct words

    c.model = ml_collections.ConfigDict()
    c.model.hidden_size = 128
    c.model.intermediate_size = 384
    c.model.num_layers = 2
    c.model.num_heads = 4
    c.model.num_kv_heads = 2
    c.model.head_dim = 32
    c.model.rope_theta = 10000.0
    c.model.context = 8192        # max_position_embeddings: the longest prompt + reply it serves

    c.train = ml_collections.ConfigDict()
    c.train.steps = 120
    c.train.batch_size = 8
    c.train.lr = 3e-3
    c.train.warmup_steps = 10
    c.train.max_len = 512         # tokens per example; longer states lose their middle (keep_head kept)
    c.train.keep_head = 96        # tokens kept from the start of a long state (system prompt and task)
    c.train.min_bucket = 512
    return c
