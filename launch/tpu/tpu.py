"""Train on a Cloud TPU VM slice. Each action prints its gcloud commands (--dry_run) or runs them.

    python launch/tpu/tpu.py create  --name=w4s --zone=us-central2-b --accelerator=v4-8 --dry_run
    python launch/tpu/tpu.py install --name=w4s --zone=us-central2-b --bucket=my-bucket
    python launch/tpu/tpu.py run     --name=w4s --zone=us-central2-b --workdir=/mnt/my-bucket/runs/r1 \
        --override=--config.model.path=/mnt/my-bucket/Qwen2.5-Coder-7B-Instruct \
        --override=--config.data.path=/mnt/my-bucket/trajectories/*.jsonl
    python launch/tpu/tpu.py delete  --name=w4s --zone=us-central2-b
"""
import os
import shlex
import subprocess
import sys

from absl import app, flags

from w4s_jax.train import tpu

flags.DEFINE_string("name", "w4s-train", "TPU VM name")
flags.DEFINE_string("zone", "us-central2-b", "zone")
flags.DEFINE_string("project", "", "GCP project (default: gcloud's)")
flags.DEFINE_string("accelerator", "v4-8", "accelerator type")
flags.DEFINE_string("version", "tpu-ubuntu2204-base", "TPU VM software version")
flags.DEFINE_bool("spot", False, "create a spot (preemptible) slice")
flags.DEFINE_string("source", ".", "install: the local repository directory to copy")
flags.DEFINE_string("bucket", "", "install: a GCS bucket to mount at /mnt/<bucket> on every worker")
flags.DEFINE_string("preset", "qwen2.5-coder-7b-tpu-v4-8", "run: train config preset")
flags.DEFINE_string("workdir", "", "run: workdir visible to every worker (e.g. /mnt/<bucket>/runs/x)")
flags.DEFINE_multi_string("override", [], "run: extra --config.<key>=<value> flags")
flags.DEFINE_bool("dry_run", False, "print the commands instead of running them")
FLAGS = flags.FLAGS

ACTIONS = ("create", "install", "run", "delete")


def main(argv):
    if len(argv) != 2 or argv[1] not in ACTIONS:
        raise app.UsageError(f"usage: tpu.py {{{'|'.join(ACTIONS)}}} [flags]")
    s = tpu.Slice(FLAGS.name, FLAGS.zone, FLAGS.accelerator, FLAGS.version, FLAGS.project, FLAGS.spot)
    action = argv[1]
    if action == "create":
        cmds = tpu.create(s)
    elif action == "install":
        cmds = tpu.install(s, source=FLAGS.source, bucket=FLAGS.bucket)
    elif action == "run":
        if not FLAGS.workdir:
            raise app.UsageError("run needs --workdir (a path every worker sees)")
        cmds = tpu.run(s, preset=FLAGS.preset, workdir=FLAGS.workdir, overrides=FLAGS.override)
    else:
        cmds = tpu.delete(s)
    for cmd in cmds:
        print(shlex.join(cmd), flush=True)
        if not FLAGS.dry_run:
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    app.run(main)
