"""Rollout speed: sandboxed evaluations against a 1 s-latency simulated API vs the ideal and vs the public
W4S scheme, client CPU per call, sandbox start-up, execute_code rate (w4s_jax/rollout/bench.py).

  python launch/bench_rollout.py                       # the full issue-5 set (about 1.5 min)
  python launch/bench_rollout.py --skip_w4s --json_out=/tmp/bench.json

Measured on the 2-core dev box (2026-11-27; 1-min load 0.5-3.4 before the runs); the server runs in
its own process on the same two cores and itself costs about 0.45 ms CPU per call. 1920 calls through
256 one-second slots cannot finish before 8.0 s, so 0.94 is the best efficiency reachable.
  first batch (cold: every sandbox spawned, new connections): 15 runs 8.52-8.99 s = efficiency 0.834-0.880,
    median 0.852 (7 of 15 below 0.85: the run-to-run spread, ~0.4 s, is start-up contention on two cores);
  steady state (same executor, refilled WorkerPool): 8.29-8.71 s = efficiency 0.861-0.905, median 0.89;
  public W4S scheme 46.9-47.3 s (ideal 45 s): ours 5.32-5.39x (first batch), 5.39-5.60x (steady state);
  client CPU per call, 256 in flight: SDK+httpx 5.0-7.1 ms, SDK+aiohttp 2.2-2.5 ms, our Executor 0.41-0.57 ms;
  parent 0.7 ms, sandboxed worker 0.5 ms per call (its start-up included) in the evaluation run;
  spawn to first item 0.062-0.079 s (bwrap) vs 0.064-0.075 s (no sandbox); execute_code 525-626 calls/s.
Before the aiohttp transport (openai SDK request path, 1.9 ms parent CPU per call) the same run took 9.0-10.1 s.
"""
import json

from absl import app, flags

from w4s_jax.rollout import bench

FLAGS = flags.FLAGS
flags.DEFINE_float("latency", 1.0, "simulated API latency per call, seconds")
flags.DEFINE_integer("candidates", 5, "candidate workflows evaluated together")
flags.DEFINE_integer("items", 128, "items per candidate")
flags.DEFINE_integer("calls", 3, "sequential executor calls per item")
flags.DEFINE_integer("concurrency", 256, "executor requests in flight (cap)")
flags.DEFINE_integer("w4s_threads", 48, "threads per evaluation in the public W4S scheme")
flags.DEFINE_bool("skip_w4s", False, "skip timing the public W4S scheme (about 45 s)")
flags.DEFINE_integer("cpu_calls", 3000, "calls per client for the CPU-per-call measurement")
flags.DEFINE_integer("sandbox_reps", 5, "sandbox start-ups timed (median reported)")
flags.DEFINE_integer("exec_calls", 1280, "execute_code calls for the rate measurement")
flags.DEFINE_string("json_out", None, "also write the results here")


def main(_):
    res = bench.run(latency_s=FLAGS.latency, candidates=FLAGS.candidates, items=FLAGS.items, calls=FLAGS.calls,
                    concurrency=FLAGS.concurrency, w4s_threads=FLAGS.w4s_threads, skip_w4s=FLAGS.skip_w4s,
                    cpu_calls=FLAGS.cpu_calls, sandbox_reps=FLAGS.sandbox_reps, exec_calls=FLAGS.exec_calls)
    print(json.dumps(res, indent=2))
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    app.run(main)
