"""Orbax checkpoints of the full train state, with a checksum manifest per step.

`<workdir>/checkpoints/<step>/` holds `state` (params, optimizer state, step; restored straight into
the target shardings) and `meta` (data position, data fingerprint, resolved config). Saves are async;
Orbax finalises a step only when it is complete (an interrupted save leaves a temporary directory that is
never listed). Once a step is final, a manifest of SHA-256 digests of its files is written beside it; at
restore a step whose files do not match is moved aside to `<workdir>/corrupt_checkpoints/` and the
previous good step is used.

With several hosts every process calls `save` and `restore_latest` (each writes and reads the shards of
its own devices; process 0 finalises steps, writes the manifests and checks them at restore). Arrays are stored with their global
shapes, so a step saved by N processes restores onto M processes and any mesh.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from w4s_jax.train.distributed import sync

log = logging.getLogger(__name__)

MANIFEST = "w4s_manifest.json"


class CheckpointCorrupt(RuntimeError):
    pass


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def step_files(step_dir: str) -> list[str]:
    out = []
    for root, _, files in os.walk(step_dir):
        for fn in files:
            rel = os.path.relpath(os.path.join(root, fn), step_dir)
            if rel != MANIFEST:
                out.append(rel)
    return sorted(out)


def write_manifest(step_dir: str) -> None:
    files = {rel: _digest(os.path.join(step_dir, rel)) for rel in step_files(step_dir)}
    tmp = os.path.join(step_dir, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump({"algorithm": "sha256", "files": files}, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(step_dir, MANIFEST))


def verify_manifest(step_dir: str) -> bool | None:
    """True if every file matches, False if any differs, is missing or was added; None without a manifest."""
    path = os.path.join(step_dir, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            files = json.load(f)["files"]
    except (OSError, ValueError, KeyError):
        return False
    if sorted(files) != step_files(step_dir):
        return False
    return all(_digest(os.path.join(step_dir, rel)) == d for rel, d in files.items())


def _verified_by_process_0(step_dir: str) -> bool | None:
    """`verify_manifest` of process 0, the same answer on every host (each host would otherwise read every
    file of the step, and hosts must agree on which step they restore)."""
    if jax.process_count() == 1:
        return verify_manifest(step_dir)
    from jax.experimental import multihost_utils

    codes = {True: 1, False: 0, None: -1}
    mine = codes[verify_manifest(step_dir)] if jax.process_index() == 0 else 0
    agreed = int(multihost_utils.broadcast_one_to_all(np.int32(mine)))
    return {v: k for k, v in codes.items()}[agreed]


class Checkpointer:
    """Async Orbax CheckpointManager (interval, keep-N) plus checksum manifests."""

    def __init__(self, directory: str, *, interval: int = 100, keep: int = 3, async_save: bool = True,
                 checksums: bool = True):
        self.directory = os.path.abspath(directory)
        self.checksums = checksums
        self._opts = dict(interval=interval, keep=keep, async_save=async_save)
        self._open()

    def _open(self):
        o = self._opts
        options = ocp.CheckpointManagerOptions(save_interval_steps=o["interval"], max_to_keep=o["keep"],
                                               enable_async_checkpointing=o["async_save"], create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def _step_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def _write_manifests(self) -> None:
        """Manifests for every final step lacking one (call only with no save in flight)."""
        if not self.checksums or jax.process_index() != 0:
            return
        for s in self.manager.all_steps():
            d = self._step_dir(s)
            if os.path.isdir(d) and not os.path.exists(os.path.join(d, MANIFEST)):
                write_manifest(d)

    def save(self, step: int, state, meta: dict, *, force: bool = False) -> bool:
        # the previous async save must be final before its files are hashed
        self.manager.wait_until_finished()
        self._write_manifests()
        saved = self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                                meta=ocp.args.JsonSave(meta)), force=force)
        return bool(saved)

    def wait(self) -> None:
        self.manager.wait_until_finished()
        self._write_manifests()

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def restore_latest(self, abstract_state):
        """(state, meta, step) of the newest step that verifies, or None when there is none."""
        for step in sorted(self.manager.all_steps(), reverse=True):
            d = self._step_dir(step)
            ok = _verified_by_process_0(d) if self.checksums else None
            if ok is False:
                self._quarantine(step)
                continue
            if ok is None and self.checksums:
                log.warning("checkpoint step %d has no checksum manifest (the run stopped right after saving "
                            "it); restoring it unverified", step)
            try:
                out = self.manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
            except Exception as e:  # an unreadable step: fall back to the previous one
                log.error("checkpoint step %d cannot be restored (%s: %s); trying an earlier step", step,
                          type(e).__name__, e)
                self._quarantine(step)
                continue
            return out["state"], dict(out["meta"]), step
        return None

    def read(self, step: int):
        """(state, meta) of one step as saved (arrays on the default device), for inspection and tests."""
        out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(),
                                                                meta=ocp.args.JsonRestore()))
        return out["state"], dict(out["meta"])

    def _quarantine(self, step: int) -> None:
        log.error("checkpoint step %d in %s failed its checksum manifest (corrupted); moving it aside and "
                  "using the previous good step", step, self.directory)
        sync(f"quarantine-{step}-checked")  # every host has looked at the step before it moves
        if jax.process_index() == 0:
            dest = os.path.join(os.path.dirname(self.directory), "corrupt_checkpoints",
                                f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.move(self._step_dir(step), dest)
        sync(f"quarantine-{step}-moved")  # and no host lists the steps again before it has
        self.manager.close()
        self._open()

    def close(self) -> None:
        self.wait()
        self.manager.close()
