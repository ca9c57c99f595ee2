"""Sampler decode speed: ours vs transformers/PyTorch `generate` on the same weights (CPU), or ours alone on an
accelerator (decode tokens/s and the fraction of the memory-bandwidth bound).

  python launch/bench_sampler.py                                   # bench-50m, fp32, CPU, vs PyTorch
  python launch/bench_sampler.py --mode=accelerator --preset=qwen2.5-7b --dtype=bfloat16   # one H100
"""
from absl import app, flags

from w4s_jax.sampling import bench

FLAGS = flags.FLAGS
flags.DEFINE_enum("mode", "reference", ["reference", "accelerator"], "vs PyTorch on CPU, or ours alone")
flags.DEFINE_string("preset", None, "model preset (default: bench-50m / qwen2.5-7b by mode)")
flags.DEFINE_integer("prompt_len", None, "prompt tokens (default 1024 / 4096)")
flags.DEFINE_integer("new_tokens", None, "new tokens per sample (default 256 / 512)")
flags.DEFINE_integer("n", 5, "samples of the one prompt")
flags.DEFINE_float("temperature", 1.0, "reference mode: sampling temperature")
flags.DEFINE_float("top_p", 1.0, "reference mode: nucleus (1 = off)")
flags.DEFINE_integer("reps", 3, "timed repetitions (median reported)")
flags.DEFINE_string("dtype", "bfloat16", "accelerator mode: compute and parameter dtype")
flags.DEFINE_float("hbm_gbps", 3350.0, "accelerator mode: memory bandwidth in GB/s (H100 SXM 3350, H200 4800)")
flags.DEFINE_string("json_out", None, "also write the results here")


def main(_):
    import json

    if FLAGS.mode == "reference":
        res = bench.run_reference(preset=FLAGS.preset or "bench-50m", prompt_len=FLAGS.prompt_len or 1024,
                                  n=FLAGS.n, new_tokens=FLAGS.new_tokens or 256, temperature=FLAGS.temperature,
                                  top_p=FLAGS.top_p, reps=FLAGS.reps)
    else:
        res = bench.run_accelerator(preset=FLAGS.preset or "qwen2.5-7b", dtype=FLAGS.dtype,
                                    prompt_len=FLAGS.prompt_len or 4096, n=FLAGS.n,
                                    new_tokens=FLAGS.new_tokens or 512, reps=FLAGS.reps, hbm_gbps=FLAGS.hbm_gbps)
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    app.run(main)
