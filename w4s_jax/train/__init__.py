"""RLAO training: trajectory JSONL -> token batches -> objective (rwr, sft, awr, dpo) -> jit-sharded steps.

Modules: data (tokenizing, loss masks, truncation, held-out split by episode; records come from
w4s_jax/trajectories.py), batches (length buckets, seeded order, per-host slices), objectives (registry
`get(name)`), optim, trainable (full or LoRA training behind one interface), lora (factors), peft_io (PEFT
adapters in and out), step (the loss and the jitted train step), evaluation (held-out NLL), checkpointing
(Orbax + checksum manifests), export (policy exports), metrics, setup (config validation and building a
run), trainer (`train(config)`), synthetic (tiny data and tokenizer), tpu.
"""
