"""Several training processes as one run: `jax.distributed` set-up from the `dist.*` config keys, and an
error on one host ending the run on every host with that host's message.

Every host runs the same `launch/train.py` command. `dist.coordinator` (host:port of process 0),
`dist.num_processes` and `dist.process_id` say who is who; left empty, JAX detects them (Cloud TPU VMs,
SLURM, Open MPI, ...). On a CPU the cross-process collectives are gloo's.

Failures, in bounded time:
  * a Python error on one host (bad data on that host only, a full disk, a bug): the failing process
    publishes "process i: <error>" in the coordination service's key-value store before it exits; a watcher
    thread in every other process reads it within a second, prints it and ends its process, even while its
    main thread waits inside a collective that will never complete;
  * a process that disappears (killed, out of memory, machine lost): JAX's coordination service ends the
    others once it has missed its heartbeats for `dist.heartbeat_timeout_s` (at once when process 0, the
    coordinator, is the one lost), naming the lost process ("tasks are unhealthy ... : 1");
  * a host missing at start: the others give up after `dist.init_timeout_s`.

The failing process prints its own error, then leaves with `end_process` (the CLI does both); process 0,
the coordinator, stays up until then, so no process is cut off before it has said why it failed.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
import time

import jax

from w4s_jax.models import ConfigError
from w4s_jax.models.sharding import sync_processes as sync  # noqa: F401 (the trainer's barrier)

log = logging.getLogger(__name__)

FAILURE_KEY = "w4s/failure"              # {"process": i, "message": str}: the first failure of the run
SEEN_PREFIX = "w4s/failure_seen/"        # + process id: that process has printed the failure and is leaving
LEAVING_KEY = "w4s/failure_leaving"      # the failing process is about to exit
ACK_TIMEOUT_S = 15.0                     # how long a failing process waits for the others to read its error
POLL_MS = 1000

_state = {"watcher": None, "stop": threading.Event(), "failed": False}


def _client():
    from jax._src import distributed as jax_distributed

    return jax_distributed.global_state.client


def initialize(dist) -> None:
    """`jax.distributed.initialize` from a config's `dist` section, then the failure watcher. Must run before
    anything touches a JAX device. Empty keys are left to JAX's cluster auto-detection."""
    if jax.distributed.is_initialized():
        return
    # gloo is JAX's default CPU implementation today; selecting it keeps multi-process CPU runs (the localhost
    # simulation of a pod) working if that default changes. Accelerator backends ignore the setting.
    if not jax.config.jax_cpu_collectives_implementation:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    n, pid = dist.num_processes, dist.process_id
    if n is not None and n < 1:
        raise ConfigError(f"config dist.num_processes: must be positive, got {n}")
    if pid is not None and (pid < 0 or (n is not None and pid >= n)):
        raise ConfigError(f"config dist.process_id: must be in [0, dist.num_processes={n}), got {pid}")
    if dist.coordinator and ":" not in dist.coordinator:
        raise ConfigError(f"config dist.coordinator: expected host:port, got {dist.coordinator!r}")
    try:
        jax.distributed.initialize(coordinator_address=dist.coordinator or None, num_processes=n, process_id=pid,
                                   initialization_timeout=int(dist.init_timeout_s),
                                   heartbeat_timeout_seconds=int(dist.heartbeat_timeout_s),
                                   shutdown_timeout_seconds=int(dist.shutdown_timeout_s))
    except (ValueError, TypeError) as e:  # nothing given and nothing detected, or inconsistent values
        raise ConfigError(f"config dist: {e} (set dist.coordinator, dist.num_processes and dist.process_id "
                          f"where the cluster cannot be detected)") from None
    except RuntimeError as e:  # the coordinator unreachable, or not every process arrived in time
        raise ConfigError(f"config dist: cannot join the run at {dist.coordinator or 'the detected coordinator'} "
                          f"as process {pid} ({str(e).splitlines()[0][:300]})") from None
    log.info("distributed: process %d of %d, %d local / %d global devices; a process that stops for %d s "
                "ends the run", jax.process_index(), jax.process_count(), jax.local_device_count(),
                jax.device_count(), dist.heartbeat_timeout_s)
    if jax.process_count() > 1:
        _start_watcher()


def multi_process() -> bool:
    return jax.process_count() > 1


def _start_watcher() -> None:
    if _state["watcher"] is not None:
        return
    t = threading.Thread(target=_watch, name="w4s-failure-watcher", daemon=True)
    _state["watcher"] = t
    t.start()
    # atexit runs last-registered first: the watcher ends before JAX's own shutdown closes the client (a
    # daemon thread still inside a client call when the interpreter finalises aborts the process)
    atexit.register(_stop_watcher)


def _stop_watcher() -> None:
    _state["stop"].set()
    t = _state["watcher"]
    if t is not None and t is not threading.current_thread():
        t.join(timeout=2 * POLL_MS / 1000)


def _watch() -> None:
    client, me = _client(), jax.process_index()
    stop = _state["stop"]
    while not stop.is_set():
        try:
            value = client.blocking_key_value_get(FAILURE_KEY, POLL_MS)
        except Exception as e:  # noqa: BLE001 - the client raises one runtime error type for everything
            if stop.is_set() or _state["failed"]:
                return
            if "DEADLINE_EXCEEDED" in str(e):
                continue
            # the coordination service itself is gone: process 0 died or its machine was lost
            _leave(f"error: process {me}: lost the run's coordination service (process 0 stopped?): "
                   f"{str(e).splitlines()[0][:300]}", 1)
        info = json.loads(value)
        if info["process"] == me or _state["failed"]:
            return  # this process failed too: its main thread reports and leaves
        _acknowledge(client, me)
        _leave(f"error: process {info['process']} of {jax.process_count()} failed: {info['message']}\n"
               f"error: process {me}: ending this process because process {info['process']} failed", 1)


def _acknowledge(client, me: int) -> None:
    """Tell the failing process this one has read its error; process 0 (the coordinator, whose exit would
    cut the failing process off before it has printed its error) then waits until it is leaving
    (`end_process`), or at most ACK_TIMEOUT_S + 2 s."""
    try:
        client.key_value_set(SEEN_PREFIX + str(me), "1")
        if me == 0:
            client.blocking_key_value_get(LEAVING_KEY, int(ACK_TIMEOUT_S * 1000) + 2000)
            time.sleep(0.2)
    except Exception:  # noqa: BLE001 - the failing process is gone already
        pass


def _leave(message: str, code: int) -> None:
    """Print and end the process now: the main thread may be blocked in a collective that never completes,
    and JAX's exit-time shutdown barrier would wait for processes that are gone."""
    try:
        print(message, file=sys.stderr, flush=True)
        sys.stdout.flush()
    finally:
        os._exit(code)


def report_failure(exc: BaseException) -> None:
    """Tell every other process that this one failed and wait until they have read it (at most ACK_TIMEOUT_S).
    When another process failed first (the same bad input fails everywhere), only acknowledge its failure.
    A no-op in a single-process run."""
    if not multi_process() or _state["failed"]:
        return
    _state["failed"] = True
    me, n = jax.process_index(), jax.process_count()
    text = " ".join(f"{type(exc).__name__}: {exc}".split())[:2000]
    client = _client()
    try:
        client.key_value_set(FAILURE_KEY, json.dumps({"process": me, "message": text}))
    except Exception:  # noqa: BLE001 - another process failed first (ALREADY_EXISTS), or the service is gone
        _acknowledge(client, me)
        return
    deadline = time.monotonic() + ACK_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if len(client.key_value_dir_get(SEEN_PREFIX)) >= n - 1:
                break
        except Exception:  # noqa: BLE001
            break
        time.sleep(0.1)


def failed() -> bool:
    """Whether this process reported a failure to the others (it should then leave with `end_process`)."""
    return _state["failed"]


def end_process(code: int) -> None:
    """Exit at once after a reported failure (print the error first): process 0, when another process
    failed, waits for this signal before it exits and takes the coordination service with it. Skips JAX's
    exit-time shutdown barrier, which could only wait for the processes that have left."""
    sys.stdout.flush()
    sys.stderr.flush()
    if _state["failed"]:
        try:
            _client().key_value_set(LEAVING_KEY, "1")
        except Exception:  # noqa: BLE001 - set already, or the service is gone
            pass
    os._exit(code)
