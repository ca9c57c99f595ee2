"""Train-step throughput, ours vs the public W4S formulation in PyTorch, measured in the same run.

    python launch/bench_train.py                                  # CPU: bench-50m, RLAO-shaped batch
    python launch/bench_train.py --device --preset=qwen2.5-coder-7b --mode=lora --seq=8192   # on a GPU
    python launch/bench_train.py --device --preset=qwen2.5-coder-7b --mode=full --remat=full
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

flags.DEFINE_bool("device", False, "accelerator mode: random weights, tokens/s, MFU, peak memory")
flags.DEFINE_string("preset", None, "model preset (default: bench-50m on CPU, qwen2.5-coder-7b with --device)")
flags.DEFINE_integer("batch", None, "examples per step (default 4 on CPU, 1 with --device)")
flags.DEFINE_integer("seq", None, "tokens per example, at most (default 1024 on CPU, 8192 with --device)")
flags.DEFINE_float("action_frac", 0.3, "share of tokens in the action (CPU mode)")
flags.DEFINE_enum("mode", "lora", ["lora", "full"], "device mode: LoRA or full-parameter training")
flags.DEFINE_string("dtype", "bfloat16", "device mode compute/param dtype")
flags.DEFINE_string("remat", "full", "device mode remat policy")
flags.DEFINE_float("peak_tflops", 0.0, "peak FLOP/s of one device for MFU (0 = from the device kind)")
flags.DEFINE_bool("torch_reference", True, "device mode: also time the PyTorch reference if CUDA torch exists")
flags.DEFINE_integer("reps", 3, "timed repetitions (median)")
flags.DEFINE_string("json_out", "", "also write the results here")
FLAGS = flags.FLAGS


def main(argv):
    from w4s_jax.train import bench

    if FLAGS.device:
        r = bench.run_device(preset=FLAGS.preset or "qwen2.5-coder-7b", batch=FLAGS.batch or 1,
                             seq=FLAGS.seq or 8192, mode=FLAGS.mode, dtype=FLAGS.dtype, remat=FLAGS.remat,
                             reps=FLAGS.reps, peak_tflops=FLAGS.peak_tflops,
                             torch_reference=FLAGS.torch_reference)
    else:
        r = bench.run_cpu(preset=FLAGS.preset or "bench-50m", batch=FLAGS.batch or 4, seq=FLAGS.seq or 1024,
                          action_frac=FLAGS.action_frac, reps=FLAGS.reps)
    print(json.dumps(r, default=str))
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(r, f, indent=2, default=str)


if __name__ == "__main__":
    app.run(main)
