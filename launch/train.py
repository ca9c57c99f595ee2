"""Train the meta-agent: see w4s_jax/cli/train.py (flags: --config=configs/train.py:<preset> --config.<key>=...).

Several hosts: run this same command on every host with --config.distributed=True, plus, where the cluster
is not detected (several GPU hosts, several processes on one machine), --config.dist.coordinator=HOST0:PORT
--config.dist.num_processes=N --config.dist.process_id=I. README "Multi-host training" has the TPU slice,
GPU host and localhost recipes.
"""
from w4s_jax.cli.train import run

if __name__ == "__main__":
    run()
