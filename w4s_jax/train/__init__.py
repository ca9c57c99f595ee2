"""RLAO training: trajectory JSONL -> token batches -> objective (rwr, sft, awr, dpo) -> jit-sharded steps.

Modules: trajectories (reading + validation), data (tokenizing, loss masks, truncation), batches (length
buckets, seeded order, per-host slices), objectives (registry `get(name)`), optim, lora, step (the jitted
train step), checkpointing (Orbax + checksum manifests), export (policy exports), metrics, setup (config
validation and building a run), trainer (`train(config)`), synthetic (tiny data and tokenizer), bench, tpu.
"""
