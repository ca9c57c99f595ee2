"""Trainer config: `--config=configs/train.py:<preset>` with presets

  tiny                          CPU, seconds: tiny model, synthetic trajectories, local tokenizer
  qwen2.5-coder-7b-lora-1gpu    the paper's meta-agent, LoRA, bf16, one 80 GB GPU
  qwen2.5-coder-7b-full-1gpu    full-parameter, bf16 params and Adam state, full remat, one 80 GB GPU
  qwen2.5-coder-7b-tpu-v4-8     full-parameter on a v4-8 slice (4 chips, FSDP)

The config is locked: a mistyped key (`--config.optim.lrr=...`) is an error.
"""
from __future__ import annotations

import ml_collections
from ml_collections import config_dict

PRESETS = ("tiny", "qwen2.5-coder-7b-lora-1gpu", "qwen2.5-coder-7b-full-1gpu", "qwen2.5-coder-7b-tpu-v4-8")


def base() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.preset = ""
    c.workdir = "runs/train"
    c.seed = 0
    c.total_steps = 100
    c.stop_after = 0            # end this run after that many steps with a checkpoint (0 = run to the end)
    c.batch_size = 16           # units (examples; pairs for dpo) per optimizer step, over all hosts
    c.accum_steps = 1           # micro-batches per step
    # Gradient accumulator dtype over micro-batches ("" = the trainable parameters' dtype). "float32" with
    # bf16 parameters sums micro-batch gradients without bf16 rounding at every add, at 4 bytes per trainable
    # parameter instead of 2: +15 GB for full training of a 7.6B model (30 GB accumulator instead of 15),
    # +0.08 GB for rank-16 LoRA (whose factors are float32 already). Unused when accum_steps = 1.
    c.accum_dtype = ""
    c.chunk_size = 1024         # rows of the [chunk, vocab] logits buffer in the target log-prob path
    c.log_every = 10
    c.policy_every = 0          # export the policy every N steps (0 = only at the end)
    c.eval_every = 0            # held-out NLL every N steps and at the end (0 = only at the end); needs
                                # data.eval_path or data.eval_fraction
    c.export_hf = False         # also write <workdir>/hf with save_pretrained at the end
    c.progress = True
    c.distributed = False       # several processes (hosts) as one run: jax.distributed with the dist.* keys
    c.peak_tflops = 0.0         # for MFU; 0 = from the device kind

    c.model = ml_collections.ConfigDict()
    c.model.path = ""           # a Hugging Face directory; empty = random init from model.preset
    c.model.preset = "tiny"
    c.model.dtype = "float32"   # compute dtype
    c.model.param_dtype = ""    # storage dtype (empty = model.dtype)
    c.model.remat = "none"
    c.model.attn_impl = "auto"

    c.tokenizer = ml_collections.ConfigDict()
    c.tokenizer.path = ""       # empty = model.path (or the built-in tiny tokenizer for data.synthetic)
    c.tokenizer.eot_token = "<|im_end|>"

    c.data = ml_collections.ConfigDict()
    c.data.path = ""            # trajectory JSONL file or glob
    c.data.eval_path = ""       # held-out trajectory file/glob (no episode may also be in data.path), or
    c.data.eval_fraction = 0.0  # hold out this fraction of data.path's episodes (by episode_id, never lines)
    c.data.synthetic = False    # write a synthetic trajectory file into the workdir and train on it
    c.data.max_len = 8192
    c.data.min_bucket = 256
    c.data.min_loss_cap = 64    # smallest static loss-token buffer (rounded up in powers of two)
    c.data.loss_on = "action"   # action | all_assistant
    c.data.truncate = "middle"  # middle | left | drop
    c.data.keep_head = 512
    c.data.include_failed = False

    c.objective = ml_collections.ConfigDict()
    c.objective.name = "rwr"
    c.objective.rwr = ml_collections.ConfigDict(dict(tau=0.4, self_normalize=False, max_weight=0.0))
    c.objective.sft = ml_collections.ConfigDict(dict(filter="chosen", threshold=0.0))
    c.objective.awr = ml_collections.ConfigDict(dict(beta=0.4, self_normalize=False, max_weight=20.0))
    c.objective.dpo = ml_collections.ConfigDict(dict(beta=0.1, margin=0.0, max_pairs_per_state=4))

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-5
    c.optim.min_lr_ratio = 0.1
    c.optim.warmup_steps = 10
    c.optim.b1 = 0.9
    c.optim.b2 = 0.999
    c.optim.eps = 1e-8
    c.optim.weight_decay = 0.0
    c.optim.grad_clip = 1.0
    c.optim.state_dtype = ""    # Adam moments' dtype (empty = the parameters' dtype)

    c.lora = ml_collections.ConfigDict()
    c.lora.enabled = False
    c.lora.rank = 16
    c.lora.alpha = 32.0
    c.lora.targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    c.lora.init_from = ""       # start from a PEFT adapter directory (its rank, alpha and targets apply);
                                # every LoRA run writes its adapter to <workdir>/adapter

    c.mesh = ml_collections.ConfigDict(dict(data=1, fsdp=-1, tensor=1, devices=0))  # devices: 0 = all

    # Multi-host (distributed=True): every host runs the same command. Empty = JAX's auto-detection (Cloud TPU
    # VMs, SLURM, Open MPI); elsewhere (several GPU hosts, the localhost simulation) set all three.
    c.dist = ml_collections.ConfigDict()
    c.dist.coordinator = ""     # host:port of process 0's coordination service, reachable from every host
    c.dist.num_processes = config_dict.placeholder(int)   # None = detect
    c.dist.process_id = config_dict.placeholder(int)      # None = detect; 0 runs the coordinator
    c.dist.init_timeout_s = 300       # give up when not every process has joined by then
    c.dist.heartbeat_timeout_s = 100  # a process silent this long (killed, machine lost) ends the run on all
    c.dist.shutdown_timeout_s = 300   # how long a finished process waits for the others at exit

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.interval = 50
    c.checkpoint.keep = 3
    c.checkpoint.async_save = True
    c.checkpoint.checksums = True
    return c


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
    c = base()
    preset = preset or "tiny"
    if preset not in PRESETS:
        raise ValueError(f"unknown train preset {preset!r}; known: {list(PRESETS)}")
    c.preset = preset
    if preset == "tiny":
        c.workdir = "runs/train-tiny"
        c.total_steps = 30
        c.batch_size = 8
        c.log_every = 5
        c.data.synthetic = True
        # one length bucket and one loss-buffer size: a single compile
        c.data.max_len = 384
        c.data.min_bucket = 384
        c.data.min_loss_cap = 1024
        c.data.keep_head = 64
        c.chunk_size = 256
        c.optim.lr = 3e-3
        c.optim.warmup_steps = 3
        c.checkpoint.interval = 10
    else:
        c.model.path = ""       # set to a local Qwen2.5-Coder-7B-Instruct directory
        c.model.preset = "qwen2.5-coder-7b"
        c.model.dtype = "bfloat16"
        c.data.max_len = 8192
        c.data.min_bucket = 1024
        c.total_steps = 500
        c.batch_size = 16
        c.checkpoint.interval = 100
        if preset == "qwen2.5-coder-7b-lora-1gpu":
            c.lora.enabled = True
            c.model.param_dtype = "bfloat16"
            c.model.remat = "dots_no_batch"
            c.accum_steps = 8
            c.optim.lr = 1e-4
        elif preset == "qwen2.5-coder-7b-full-1gpu":
            c.model.param_dtype = "bfloat16"
            c.optim.state_dtype = "bfloat16"
            c.model.remat = "full"
            c.accum_steps = 16
            c.optim.lr = 1e-5
        elif preset == "qwen2.5-coder-7b-tpu-v4-8":
            c.model.param_dtype = "float32"
            c.optim.state_dtype = "bfloat16"
            c.model.remat = "dots_no_batch"
            c.mesh.fsdp = -1
            c.accum_steps = 4
            c.optim.lr = 1e-5
            c.distributed = True
    c.lock()
    return c
