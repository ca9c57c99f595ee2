"""Per-step cost of training over several processes: P processes x D devices against 1 process x P*D
devices, the same global mesh (fsdp over every device), model, batch and train step.

Each layout runs in its own processes (jax.distributed on localhost for P > 1; on a CPU the collectives
between processes are gloo's over TCP), which stay alive between repetitions: after a warm-up step (the
compile) each waits on its standard input, and the parent runs the layouts' repetitions in turn (A, B, A,
B, ...) so that other load falls on both alike. One timed repetition is `steps` steps of what the trainer
does per step, timed in parts: `batch` (this host's rows of the global batch built from the batch plan and
placed as global arrays), `step` (the jitted step and the loss fetched) and `agree` (the hosts' agreement
on preemption, one small collective).

    python launch/bench_multihost.py                                       # tiny: seconds
    python launch/bench_multihost.py --config=configs/bench_multihost.py:bench-50m
    python -m w4s_jax.bench.multihost '<child JSON>'                       # one process of a layout
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from w4s_jax.bench.config import run_config
from w4s_jax.bench.timing import Timing, fmt_spread, spread

_READY, _RESULT = "READY ", "RESULT "


def _layouts(spec: str) -> list[tuple[int, int]]:
    """"1x8,2x4" -> [(1, 8), (2, 4)] (processes x devices per process)."""
    out = []
    for part in spec.split(","):
        p, d = part.strip().lower().split("x")
        out.append((int(p), int(d)))
    if len({p * d for p, d in out}) != 1:
        raise ValueError(f"layouts {spec!r} must have the same total device count")
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


class _Layout:
    """The processes of one layout, driven line by line over their standard input and output."""

    def __init__(self, processes: int, devices: int, job: dict, log):
        self.name = f"{processes}x{devices}"
        port = _free_port()
        env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
        self.procs = []
        for i in range(processes):
            child = dict(job, processes=processes, process_id=i, coordinator=f"localhost:{port}")
            self.procs.append(subprocess.Popen([sys.executable, "-m", "w4s_jax.bench.multihost", json.dumps(child)],
                                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env))
        self.log = log

    def _reply(self, prefix: str) -> list[dict]:
        """The next `prefix` line of every process (other output, e.g. gloo's, is skipped)."""
        out = []
        for i, p in enumerate(self.procs):
            for line in p.stdout:  # gloo writes to the same stdout, sometimes onto our line
                at = line.find(prefix)
                if at >= 0:
                    out.append(json.JSONDecoder().raw_decode(line[at + len(prefix):])[0])
                    break
            else:
                raise RuntimeError(f"layout {self.name}: process {i} ended (exit status {p.wait()})")
        return out

    def ready(self) -> dict:
        return self._reply(_READY)[0]

    def run(self) -> dict:
        for p in self.procs:
            p.stdin.write("run\n")
            p.stdin.flush()
        replies = self._reply(_RESULT)
        return {"seconds": max(r["seconds"] for r in replies), "loss": replies[0]["loss"],
                "phases": replies[0]["phases"]}

    def close(self) -> None:
        for p in self.procs:
            try:
                p.stdin.close()
            except OSError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()


def run(model: str = "tiny", batch: int = 8, seq: int = 128, action_frac: float = 0.3, steps: int = 10,
        layouts: str = "1x8,2x4", mesh_data: int = 1, reps: int = 3, seed: int = 0, log=print) -> dict:
    """Seconds per train step of each layout (min/median/max over `reps` repetitions of `steps` steps) and
    each layout's per-step overhead against the first (time ratio within each interleaved repetition).
    The mesh is (data=mesh_data, fsdp=the other devices) in every layout; with mesh_data = the process
    count, data parallelism runs across processes and FSDP within each."""
    shapes = _layouts(layouts)
    job = dict(model=model, batch=batch, seq=seq, action_frac=action_frac, steps=steps, seed=seed,
               mesh_data=mesh_data)
    running = {}
    try:
        for p, d in shapes:  # one layout at a time through its compile, so compiles do not compete
            lay = _Layout(p, d, job, log)
            running[lay.name] = lay
            info = lay.ready()
            log(f"{lay.name}: ready (setup {info['setup_s']:.1f} s, first step {info['first_step_s']:.1f} s)")
        times = {name: Timing() for name in running}
        losses = {name: [] for name in running}
        phases = {name: {} for name in running}  # per-step seconds of each part, per repetition
        for _ in range(reps):
            for name, lay in running.items():
                r = lay.run()
                times[name].samples.append(r["seconds"] / steps)
                losses[name].append(r["loss"])
                for k, v in r["phases"].items():
                    phases[name].setdefault(k, []).append(v / steps)
    finally:
        for lay in running.values():
            lay.close()
    base = next(iter(running))
    out = {"model": model, "batch": batch, "seq": seq, "mesh": {"data": mesh_data, "fsdp": -1},
           "steps_per_rep": steps, "layouts": {}}
    for name, t in times.items():
        ratio = spread(o / b for o, b in zip(t.samples, times[base].samples))
        parts = {k: spread(v) for k, v in phases[name].items()}
        out["layouts"][name] = {"step_s": t.seconds(), "overhead_vs_" + base: ratio, "parts_s": parts,
                                "last_loss": losses[name][-1]}
        log(f"{name}: {fmt_spread(t.seconds(), 3)} s/step; x{fmt_spread(ratio, 2)} the time of {base}; "
            + ", ".join(f"{k} {v['median']:.3f} s" for k, v in parts.items()))
    # the same computation in every layout: the losses must agree (a check, not a figure)
    first = losses[base][-1]
    out["losses_agree"] = all(abs(v[-1] - first) <= 1e-4 * max(1.0, abs(first)) for v in losses.values())
    return out


def _child(job: dict) -> None:
    """One process of a layout: set up, compile, then time `steps` steps per "run" line until stdin closes."""
    t0 = time.perf_counter()
    import types

    import jax
    import jax.numpy as jnp

    from w4s_jax.models import get_preset, init_model
    from w4s_jax.models.sharding import DEFAULT_RULES, ShardingRules, make_mesh
    from w4s_jax.train import distributed, objectives, optim
    from w4s_jax.train import step as step_lib
    from w4s_jax.train.batches import BatchPlan, loss_token_cap
    from w4s_jax.train.trainable import FullTraining
    from w4s_jax.train.trainer import Preemption

    if job["processes"] > 1:
        distributed.initialize(types.SimpleNamespace(
            coordinator=job["coordinator"], num_processes=job["processes"], process_id=job["process_id"],
            init_timeout_s=300, heartbeat_timeout_s=100, shutdown_timeout_s=60))
    from w4s_jax.bench.train import TAU, _optim_cfg, rlao_examples

    mesh = make_mesh(job["mesh_data"], -1, 1)
    rules = ShardingRules(mesh, DEFAULT_RULES)
    model = init_model(get_preset(job["model"]), seed=job["seed"], mesh=mesh)
    training = FullTraining(model)
    params, frozen = training.split(model)
    del model
    tx = optim.make_optimizer(_optim_cfg(1e-5), 1000)
    shardings, _ = training.shardings(rules)
    state = jax.jit(lambda p: {"params": p, "opt": tx.init(p), "step": jnp.zeros((), jnp.int32)})(params)
    objective = objectives.get("rwr")(tau=TAU)
    train_step = step_lib.make_train_step(step_lib.StepSpec(training, objective), tx)
    # one batch per epoch: every position holds the same examples (shuffled), so one loss-buffer size
    examples = rlao_examples(get_preset(job["model"]).vocab_size, job["batch"], job["seq"], job["action_frac"],
                             seed=job["seed"])
    plan = BatchPlan(examples, batch_size=job["batch"], max_len=job["seq"], seed=job["seed"], min_bucket=job["seq"])
    mine = step_lib.local_rows(rules, plan.rows)
    preemption = Preemption()
    position = 0

    phases = {"batch": 0.0, "step": 0.0, "agree": 0.0}  # seconds of each part, over the timed steps

    def one_step():
        nonlocal state, position
        t = time.perf_counter()
        stats = plan.row_stats(position)
        host = plan.arrays(position, rows=mine)
        cap = loss_token_cap(step_lib.micro_loss_max(stats["loss_tokens"], 1, 1),
                             limit=plan.rows * host["input_ids"].shape[1], minimum=128)
        batch = step_lib.device_batch(host, rules, objective, stats=stats)
        t1 = time.perf_counter()
        state, metrics = train_step(state, frozen, batch, max_tokens=cap)
        position += 1
        loss = float(metrics["loss"])
        t2 = time.perf_counter()
        preemption.requested()
        for k, dt in (("batch", t1 - t), ("step", t2 - t1), ("agree", time.perf_counter() - t2)):
            phases[k] += dt
        return loss

    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    one_step()
    print(_READY + json.dumps({"setup_s": setup_s, "first_step_s": time.perf_counter() - t1}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        t1 = time.perf_counter()
        for k in phases:
            phases[k] = 0.0
        for _ in range(job["steps"]):
            loss = one_step()
        print(_RESULT + json.dumps({"seconds": time.perf_counter() - t1, "loss": loss, "phases": phases}), flush=True)


def main(config) -> None:
    run_config(config, run=run)


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
