"""Model forward+backward speed: ours vs transformers/PyTorch on the same weights (CPU), or ours alone on an
accelerator (tokens/s and MFU).

  python launch/bench_model.py                                  # bench-50m, CPU, vs PyTorch
  python launch/bench_model.py --mode=accelerator --preset=qwen2.5-7b --seq=4096   # one H100
"""
from absl import app, flags

from w4s_jax.bench import model_step

FLAGS = flags.FLAGS
flags.DEFINE_enum("mode", "reference", ["reference", "accelerator"], "vs PyTorch on CPU, or ours alone")
flags.DEFINE_string("preset", None, "model preset (default: bench-50m / qwen2.5-7b by mode)")
flags.DEFINE_integer("batch", None, "batch size (default 2 / 1)")
flags.DEFINE_integer("seq", None, "sequence length (default 512 / 4096)")
flags.DEFINE_float("loss_frac", 0.3, "fraction of tokens carrying loss in the RLAO-shaped step")
flags.DEFINE_integer("reps", 5, "timed repetitions (median reported)")
flags.DEFINE_string("dtype", "bfloat16", "accelerator mode: compute and parameter dtype")
flags.DEFINE_string("remat", "full", "accelerator mode: remat policy")
flags.DEFINE_float("peak_tflops", 989.0, "accelerator mode: the card's dense bf16 peak (H100 SXM: 989)")
flags.DEFINE_string("json_out", None, "also write the results here")


def main(_):
    import json

    if FLAGS.mode == "reference":
        res = model_step.run(preset=FLAGS.preset or "bench-50m", batch=FLAGS.batch or 2, seq=FLAGS.seq or 512,
                             loss_frac=FLAGS.loss_frac, reps=FLAGS.reps)
    else:
        res = model_step.run_accelerator(preset=FLAGS.preset or "qwen2.5-7b", batch=FLAGS.batch or 1,
                                         seq=FLAGS.seq or 4096, dtype=FLAGS.dtype, remat=FLAGS.remat,
                                         reps=FLAGS.reps, peak_tflops=FLAGS.peak_tflops)
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    app.run(main)
