"""gcloud command lines for training on a Cloud TPU VM slice: create, install, run on every worker, delete.

Every host of a slice runs the same `launch/train.py` command with `--config.distributed=True`; on a TPU VM
JAX detects the coordinator, the process count and each host's index, so the `dist.*` keys stay empty
(see w4s_jax/train/distributed.py; each host feeds its own rows of every batch). The run's workdir and data
must be visible to all hosts under the same path: `install` mounts a GCS bucket with gcsfuse at
/mnt/<bucket> when one is given.
The builders only return argv lists; `launch/tpu/tpu.py` prints them (--dry_run) or runs them.
"""
from __future__ import annotations

import dataclasses
import shlex

REPO_DIR = "~/w4s-jax"


@dataclasses.dataclass(frozen=True)
class Slice:
    name: str
    zone: str
    accelerator: str = "v4-8"
    version: str = "tpu-ubuntu2204-base"
    project: str = ""
    spot: bool = False

    def _common(self) -> list[str]:
        return [f"--zone={self.zone}"] + ([f"--project={self.project}"] if self.project else [])


def create(s: Slice) -> list[list[str]]:
    cmd = ["gcloud", "compute", "tpus", "tpu-vm", "create", s.name, *s._common(),
           f"--accelerator-type={s.accelerator}", f"--version={s.version}"]
    return [cmd + (["--spot"] if s.spot else [])]


def ssh_all(s: Slice, command: str) -> list[str]:
    return ["gcloud", "compute", "tpus", "tpu-vm", "ssh", s.name, *s._common(), "--worker=all",
            f"--command={command}"]


def install(s: Slice, *, source: str, bucket: str = "") -> list[list[str]]:
    """Copy the repository (a local directory) to every worker and install it with the TPU jax build."""
    steps = [["gcloud", "compute", "tpus", "tpu-vm", "scp", "--recurse", source, f"{s.name}:{REPO_DIR}",
              *s._common(), "--worker=all"],
             ssh_all(s, f"cd {REPO_DIR} && python3 -m pip install -q -U pip && python3 -m pip install -q -e '.[tpu]'")]
    if bucket:
        mount = (f"sudo mkdir -p /mnt/{bucket} && sudo chown $USER /mnt/{bucket} && "
                 f"gcsfuse --implicit-dirs {shlex.quote(bucket)} /mnt/{bucket}")
        steps.append(ssh_all(s, mount))
    return steps


def run(s: Slice, *, preset: str, workdir: str, overrides: list[str] = ()) -> list[list[str]]:
    """The same training command on every worker (multi-host: distributed init on)."""
    args = ["python3", "launch/train.py", f"--config=configs/train.py:{preset}", f"--config.workdir={workdir}",
            "--config.distributed=True", *overrides]
    return [ssh_all(s, f"cd {REPO_DIR} && " + shlex.join(args))]


def delete(s: Slice) -> list[list[str]]:
    return [["gcloud", "compute", "tpus", "tpu-vm", "delete", s.name, *s._common(), "--quiet"]]
