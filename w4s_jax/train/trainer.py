"""The RLAO training loop: build the run from its config, resume from the newest good checkpoint, train,
checkpoint, export the policy. `train(config)` is what `launch/train.py` runs.

A rerun with the same workdir resumes exactly (params, optimizer state, step and data position come from
the checkpoint). SIGTERM (a TPU preemption) or `stop_after` ends the run after the current step with
a checkpoint.

With `distributed=True` every host runs this same function (see distributed.py): each builds and feeds only
its own rows of every global batch, checkpoints and exports are written by all hosts together, metrics,
TensorBoard and the progress bar come from process 0, and an error on one host ends the run on all. A
checkpoint restores onto any number of hosts and devices (the data position is a global batch index).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec

from w4s_jax.models.sharding import DEFAULT_RULES, ShardingRules
from w4s_jax.train import distributed, objectives, setup, trainable
from w4s_jax.train import step as step_lib
from w4s_jax.train.batches import BatchPlan, assemble, loss_token_cap
from w4s_jax.train.checkpointing import Checkpointer
from w4s_jax.train.evaluation import HeldOut
from w4s_jax.train.export import export_policy
from w4s_jax.train.metrics import MetricsWriter, peak_flops, step_flops
from w4s_jax.train.optim import make_optimizer, schedule

log = logging.getLogger(__name__)


class Preemption:
    """Turns SIGTERM into a flag the loop checks after each step (all hosts agree on it)."""

    def __init__(self):
        self.flag = False
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: no handler, no preemption support
            self._old = None
        return self

    def _handle(self, signum, frame):
        log.warning("SIGTERM: finishing this step, then checkpointing and exiting")
        self.flag = True

    def requested(self) -> bool:
        if jax.process_count() == 1:
            return self.flag
        from jax.experimental import multihost_utils

        return bool(np.max(multihost_utils.process_allgather(np.int32(self.flag))))

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def reference_logprobs(model, examples, *, batch_size: int, max_len: int, min_bucket: int, chunk_size: int,
                       rules: ShardingRules) -> None:
    """Set `ref_logprob` (sum over loss tokens) of every example under the starting policy (dpo)."""
    from w4s_jax.models import target_logprobs

    fn = jax.jit(lambda m, ids, tgt, mask: (target_logprobs(m, ids, tgt, mask, chunk_size=chunk_size)
                                            * mask).sum(-1), out_shardings=NamedSharding(rules.mesh, PartitionSpec()))
    plan = BatchPlan(examples, batch_size=batch_size, max_len=max_len, seed=0, min_bucket=min_bucket)
    mine = step_lib.local_rows(rules, batch_size)
    for length, units in sorted(plan.by_bucket.items()):
        for i in range(0, len(units), batch_size):
            chunk = units[i:i + batch_size]
            b = assemble(examples, chunk, batch_size, length, 1, plan.units, rows=mine)
            d = step_lib.device_arrays({k: b[k] for k in ("input_ids", "targets", "loss_mask")}, rules, batch_size)
            lp = np.asarray(fn(model, d["input_ids"], d["targets"], d["loss_mask"]))
            for r, u in enumerate(chunk):
                examples[u].ref_logprob = float(lp[r])


def _opt_shardings(tx, params, param_sharding, replicated):
    """Optimizer state shardings: moments like their parameter, everything else (counts) replicated."""
    abstract = jax.eval_shape(tx.init, params)
    return optax.tree_map_params(tx, lambda _, s: s, abstract, param_sharding,
                                 transform_non_params=lambda _: replicated,
                                 is_leaf=lambda x: isinstance(x, NamedSharding))


def _sharded_fraction(tree) -> float:
    """Share of the bytes of `tree` held in arrays split over devices (not fully replicated)."""
    leaves = [x for x in jax.tree.leaves(tree) if hasattr(x, "sharding") and x.size > 1]
    total = sum(x.nbytes for x in leaves)
    split = sum(x.nbytes for x in leaves if not x.sharding.is_fully_replicated)
    return split / total if total else 0.0


def _write_run_config(cfg) -> None:
    if jax.process_index() != 0:
        return
    os.makedirs(cfg.workdir, exist_ok=True)
    with open(os.path.join(cfg.workdir, "config.json"), "w") as f:
        json.dump(cfg.to_dict(), f, indent=2, sort_keys=True, default=str)


def train(cfg) -> dict:
    """Run (or resume) training as configured; returns a summary {step, metrics, preempted, data, ...}.
    With `distributed=True`, every process of the run calls it; an exception in one is reported to the
    others (which then end) before it propagates."""
    if cfg.distributed:
        distributed.initialize(cfg.dist)
    try:
        return _train(cfg)
    except BaseException as e:
        distributed.report_failure(e)
        raise


def _train(cfg) -> dict:
    setup.validate_config(cfg)
    _write_run_config(cfg)
    pid, pcount = jax.process_index(), jax.process_count()
    mesh = setup.build_mesh(cfg)
    rules = ShardingRules(mesh, DEFAULT_RULES)
    replicated = NamedSharding(mesh, PartitionSpec())
    objective = objectives.from_config(cfg.objective)
    model = setup.build_model(cfg, mesh)
    model_config = model.config
    tokenizer = setup.build_tokenizer(cfg)
    data = setup.build_data(cfg, tokenizer, objective, model_config.vocab_size)
    if objective.needs_reference:
        reference_logprobs(model, data.examples, batch_size=cfg.batch_size, max_len=cfg.data.max_len,
                           min_bucket=cfg.data.min_bucket, chunk_size=cfg.chunk_size, rules=rules)
    plan = BatchPlan(data.examples, batch_size=cfg.batch_size, max_len=cfg.data.max_len, seed=cfg.seed,
                     pairs=data.pairs, min_bucket=cfg.data.min_bucket)
    log.info("data: %s; %d batches per epoch", data.report, plan.batches_per_epoch)

    training = trainable.from_config(cfg, model)
    t_shard, _ = training.shardings(rules)
    initial, frozen = training.split(model)
    initial = jax.device_put(initial, t_shard)
    del model  # its weights live on only as `initial` (full training, donated below) or `frozen` (LoRA)
    tx = make_optimizer(cfg.optim, cfg.total_steps)
    state_shard = {"params": t_shard, "opt": _opt_shardings(tx, initial, t_shard, replicated), "step": replicated}
    make_state = jax.jit(lambda p: {"params": p, "opt": tx.init(p), "step": jnp.zeros((), jnp.int32)},
                         out_shardings=state_shard, donate_argnums=0)
    ckpt = Checkpointer(os.path.join(cfg.workdir, "checkpoints"), interval=cfg.checkpoint.interval,
                        keep=cfg.checkpoint.keep, async_save=cfg.checkpoint.async_save,
                        checksums=cfg.checkpoint.checksums)
    abstract = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                            jax.eval_shape(make_state, initial), state_shard)
    restored = ckpt.restore_latest(abstract)
    fingerprint = plan.fingerprint()
    if restored is None:
        state, position = make_state(initial), 0
    else:
        state, meta, at = restored
        position = int(meta["data_position"])
        if meta.get("data_fingerprint") != fingerprint:
            log.warning("resuming step %d on different data or batching than the checkpoint was trained on", at)
        log.info("resumed from step %d (data position %d)", at, position)
    del initial

    spec = step_lib.StepSpec(training, objective, accum_steps=cfg.accum_steps, chunk_size=cfg.chunk_size,
                             accum_dtype=jnp.dtype(cfg.accum_dtype) if cfg.accum_dtype else None)
    train_step = step_lib.make_train_step(spec, tx, state_sharding=state_shard)
    lr_at = schedule(cfg.optim, cfg.total_steps)
    rows_per_unit = 2 if objective.pairwise else 1
    micro_rows = cfg.batch_size * rows_per_unit // cfg.accum_steps
    held_out = None
    if data.held_out:
        held_out = HeldOut(data.held_out, objective, rows=micro_rows, max_len=cfg.data.max_len,
                           min_bucket=cfg.data.min_bucket, min_loss_cap=cfg.data.min_loss_cap,
                           chunk_size=cfg.chunk_size, rules=rules)
        log.info("held-out evaluation: %s", held_out.describe())
    peak = peak_flops(override_tflops=cfg.peak_tflops)
    n_devices = jax.device_count()

    def meta_for(pos):
        return {"data_position": pos, "data_fingerprint": fingerprint, "config": json.loads(
            json.dumps(cfg.to_dict(), default=str))}

    def export(model_step: int):
        m = training.merged(state["params"], frozen)
        export_policy(m, os.path.join(cfg.workdir, "policy", str(model_step)), step=model_step, tokenizer=tokenizer)
        return m

    step = int(jax.device_get(state["step"]))
    end = cfg.total_steps if not cfg.stop_after else min(cfg.total_steps, step + cfg.stop_after)
    writer = MetricsWriter(cfg.workdir, enabled=pid == 0)
    progress = None
    if cfg.progress and pid == 0:
        from tqdm import tqdm

        progress = tqdm(total=cfg.total_steps, initial=step, desc="train", unit="step")
    last_metrics: dict = {}
    preempted = False
    window = {"t": time.perf_counter(), "tokens": 0.0, "flops": 0.0}
    saved_at = step if restored is not None else None
    my_rows = step_lib.local_rows(rules, plan.rows)  # this host's rows of every global batch
    if pcount > 1:
        log.info("process %d of %d feeds rows %d:%d of each %d-row batch", pid, pcount, my_rows.start,
                 my_rows.stop, plan.rows)
    with Preemption() as preemption:
        while step < end:
            stats = plan.row_stats(position)  # per-row numbers of the whole batch (weights, buffer size)
            host = plan.arrays(position, rows=my_rows)  # token arrays of this host's rows only
            length = host["input_ids"].shape[1]
            cap = loss_token_cap(step_lib.micro_loss_max(stats["loss_tokens"], cfg.accum_steps, rows_per_unit),
                                 limit=micro_rows * length, minimum=cfg.data.min_loss_cap)
            batch = step_lib.device_batch(host, rules, objective, stats=stats)
            state, metrics = train_step(state, frozen, batch, max_tokens=cap)
            position += 1
            step += 1
            tokens, loss_tokens = float(stats["tokens"].sum()), float(stats["loss_tokens"].sum())
            window["tokens"] += tokens
            window["flops"] += step_flops(model_config, tokens=tokens, loss_tokens=loss_tokens, seq_len=length,
                                          lora=training.lora)
            evaluate = held_out is not None and (step == end or (cfg.eval_every and step % cfg.eval_every == 0))
            if step % cfg.log_every == 0 or step == end or evaluate:
                m = {k: float(v) for k, v in jax.device_get(metrics).items()}
                dt = time.perf_counter() - window["t"]
                m.update(lr=float(lr_at(step - 1)), tokens_per_s=window["tokens"] / dt, epoch=position / plan.batches_per_epoch)
                if peak:
                    m["mfu"] = window["flops"] / dt / (peak * n_devices)
                if evaluate:
                    m.update(held_out.evaluate(training, state["params"], frozen))
                writer.write(step, m)
                last_metrics = m
                window = {"t": time.perf_counter(), "tokens": 0.0, "flops": 0.0}
                if progress is not None:
                    progress.set_postfix(loss=f"{m['loss']:.4f}", nll=f"{m['nll']:.3f}", tok_s=f"{m['tokens_per_s']:.0f}")
            if progress is not None:
                progress.update(1)
            if cfg.policy_every and step % cfg.policy_every == 0:
                export(step)
            preempted = preemption.requested()
            if step % cfg.checkpoint.interval == 0 or step == end or preempted:
                ckpt.save(step, state, meta_for(position), force=True)
                saved_at = step
            if preempted:
                log.warning("preempted: checkpoint at step %d written; exiting", step)
                break
    sharded = {k: _sharded_fraction(state[k]) for k in ("params", "opt")}
    if saved_at != step:
        ckpt.save(step, state, meta_for(position), force=True)
    ckpt.close()
    writer.close()
    if progress is not None:
        progress.close()
    # the trained part in its own format (LoRA: a PEFT adapter) whenever a run ends, preempted or not
    adapter = training.save_trained(state["params"], cfg.workdir)
    if step >= cfg.total_steps and not preempted:
        final = export(step)
        if cfg.export_hf:
            from w4s_jax.models import save_pretrained

            save_pretrained(final, os.path.join(cfg.workdir, "hf"))  # every host takes part, process 0 writes
            if pid == 0:  # what transformers and vLLM need to serve it
                tokenizer.save_pretrained(os.path.join(cfg.workdir, "hf"))
            distributed.sync("hf-tokenizer")
    return {"step": step, "metrics": last_metrics, "preempted": preempted, "data": data.report,
            "sharded_fraction": sharded, "adapter": adapter}
