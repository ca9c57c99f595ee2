"""Sandboxed worker processes for untrusted workflow code (parent side).

On Linux the worker runs under bubblewrap: new PID, network, IPC and UTS namespaces (the parent and its
/proc are invisible, only a loopback with nothing on it), read-only /usr and Python installation, a
size-capped private tmpfs as /tmp and working directory, an empty environment (no API keys), and
rlimits (address space, CPU, file size, processes, open files). When we are root, bubblewrap runs
privileged and the worker drops to a fresh unprivileged uid before touching workflow code: for root,
RLIMIT_NPROC is not enforced, and a distinct uid per sandbox keeps one fork bomb from starving the
others. When we are not root, bubblewrap's user namespace gives the same separation.

If bubblewrap is missing or cannot create its namespaces here, `check_sandbox` raises
SandboxUnavailableError; only an explicit `sandbox="none"` runs the worker unconfined (logged loudly).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import site
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ProtocolError, SandboxUnavailableError

log = logging.getLogger(__name__)

WORKER_FILES = ("sandbox_worker.py", "agent_api.py", "codeexec.py")
_HERE = Path(__file__).resolve().parent
_MOUNT = "/opt/w4s"
MAX_MESSAGE_BYTES = 16 << 20
SANDBOX_MODES = ("bwrap", "none")


@dataclass
class SandboxLimits:
    memory_mb: int = 4096          # address space of the worker (all its threads)
    exec_memory_mb: int = 1024     # address space of each execute_code child
    exec_parallel: int = 2         # execute_code children running at once per worker
    cpu_s: int = 900               # CPU seconds of the worker
    file_mb: int = 64              # largest file the workflow may write
    scratch_mb: int = 64           # size of its private /tmp
    open_files: int = 512
    extra_procs: int = 64          # processes/threads allowed beyond the item threads
    thread_stack_kb: int = 4096
    stderr_kb: int = 64            # worker stderr kept for diagnostics (startup failures)


def _env() -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "MALLOC_ARENA_MAX": "2",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# -S: no `site` at start-up. Processing the .pth files of site-packages costs about 50 ms CPU per worker
# (a third of a sandbox start); the worker appends the plain site-packages directories itself
# (`import_paths()`), so installed packages stay importable, .pth-only ones (editable installs) do not.
WORKER_PYTHON_FLAGS = ("-I", "-S", "-B")


def import_paths() -> list[str]:
    """Where the worker finds installed packages (also bound read-only into the sandbox)."""
    try:
        dirs = site.getsitepackages()
    except AttributeError:
        dirs = []
    return [d for d in dirs if os.path.isdir(d)]


def _python_roots() -> list[str]:
    """Directories the interpreter and its installed packages live in (bound read-only)."""
    cands = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    try:
        cands.update(site.getsitepackages())
    except AttributeError:
        pass
    roots = sorted(Path(c).resolve() for c in cands if c and os.path.isdir(c))
    out: list[Path] = []
    for r in roots:
        if r == Path("/") or str(r).startswith("/usr/") or str(r) == "/usr":
            continue  # /usr is bound anyway
        if not any(r == o or o in r.parents for o in out):
            out.append(r)
    return [str(p) for p in out]


def bwrap_command(limits: SandboxLimits, *, privileged: bool) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailableError("bubblewrap (`bwrap`) is not installed; install it (Debian/Ubuntu: "
                                      "apt-get install bubblewrap) or pass sandbox='none' for trusted code")
    cmd = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    if not privileged:
        cmd += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            cmd += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
    # The private /tmp goes first: an interpreter or packages living under /tmp (a virtualenv made there)
    # are bound on top of it below; mounted afterwards, the tmpfs would hide them.
    cmd += ["--perms", "1777", "--size", str(limits.scratch_mb << 20), "--tmpfs", "/tmp"]
    made = {"/", "/tmp"}
    for root in _python_roots():
        # bwrap would create missing parents mode 0700, unreadable once the worker drops to its own uid.
        parents = [p for p in reversed(Path(root).parents) if str(p) not in made]
        for p in parents:
            cmd += ["--perms", "0755", "--dir", str(p)]
            made.add(str(p))
        cmd += ["--ro-bind", root, root]
        made.add(root)
    cmd += ["--perms", "0755", "--dir", _MOUNT]
    for f in WORKER_FILES:
        cmd += ["--ro-bind", str(_HERE / f), f"{_MOUNT}/{f}"]
    cmd += ["--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(8 << 20), "--tmpfs", "/dev/shm",
            "--remount-ro", "/",  # the root tmpfs bwrap builds: nothing but /tmp stays writable
            "--chdir", "/tmp", "--clearenv"]
    for k, v in _env().items():
        cmd += ["--setenv", k, v]
    if privileged:  # only so that the worker can switch to its own uid; all capabilities go with setuid
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    cmd += ["--", sys.executable, *WORKER_PYTHON_FLAGS, f"{_MOUNT}/sandbox_worker.py"]
    return cmd


_PROBED: dict[bool, str | None] = {}


def check_sandbox(limits: SandboxLimits | None = None) -> None:
    """Run a trivial command in the sandbox once per process; raise SandboxUnavailableError if it fails."""
    privileged = os.geteuid() == 0
    if privileged not in _PROBED:
        cmd = bwrap_command(limits or SandboxLimits(), privileged=privileged)
        cmd = cmd[: cmd.index("--") + 1] + [sys.executable, *WORKER_PYTHON_FLAGS, "-c", "import os; print(os.getpid())"]
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=30, text=True)
            ok = p.returncode == 0 and p.stdout.strip().isdigit()
            _PROBED[privileged] = None if ok else (f"exit {p.returncode}: {p.stderr.strip()[:500]}")
        except (OSError, subprocess.TimeoutExpired) as e:
            _PROBED[privileged] = repr(e)
    reason = _PROBED[privileged]
    if reason is not None and "execvp" in reason:
        raise SandboxUnavailableError(
            f"bubblewrap started, but the Python interpreter {sys.executable} is not visible inside the sandbox "
            f"({reason}). The sandbox binds /usr and {', '.join(_python_roots()) or 'no other directory'} "
            "read-only; an interpreter reached through a path outside those (e.g. a symlink into another "
            "directory) cannot start. Use an interpreter under one of them, or report this with the path.")
    if reason is not None:
        raise SandboxUnavailableError(
            f"bubblewrap cannot create a sandbox here ({reason}). Typical causes: user namespaces disabled "
            "(kernel.unprivileged_userns_clone / user.max_user_namespaces) or a container without the needed "
            "privileges. Refusing to run untrusted workflow code; pass sandbox='none' only for trusted code.")


class WorkerProcess:
    """One worker: JSON lines over its stdin/stdout, stderr kept (capped) for diagnostics."""

    def __init__(self, mode: str, limits: SandboxLimits):
        if mode not in SANDBOX_MODES:
            raise ValueError(f"sandbox must be one of {SANDBOX_MODES}, got {mode!r}")
        self.mode, self.limits = mode, limits
        self.proc: asyncio.subprocess.Process | None = None
        self.uid: int | None = None
        self._stderr = bytearray()
        self._stderr_task: asyncio.Task | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    async def start(self) -> None:
        if self.mode == "bwrap":
            check_sandbox(self.limits)
            privileged = os.geteuid() == 0
            cmd = bwrap_command(self.limits, privileged=privileged)
            # A fresh uid per sandbox: rlimits on processes are per uid.
            self.uid = 10_000_000 + secrets.randbelow(1_000_000_000) if privileged else None
            # bwrap's own init (pid 1 in the sandbox) keeps the environment it was started with, so it must
            # not be ours: that is where the API key lives.
            kw = {"env": _env()}
        else:
            log.warning("SANDBOX DISABLED (sandbox='none'): workflow code runs unconfined with this user's "
                        "rights. Use only for trusted code.")
            self._tmp = tempfile.TemporaryDirectory(prefix="w4s-nosandbox-")
            cmd = [sys.executable, *WORKER_PYTHON_FLAGS, str(_HERE / "sandbox_worker.py")]
            kw = {"cwd": self._tmp.name, "env": {**_env(), "HOME": self._tmp.name, "TMPDIR": self._tmp.name},
                  "start_new_session": True}
        spawn = asyncio.ensure_future(asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            limit=MAX_MESSAGE_BYTES, **kw))
        try:
            self.proc = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            # Cancelled while the process was being created. Interrupting that can hang CPython's own
            # clean-up, and killing bwrap in the middle of its set-up can orphan its inner half: let the
            # creation finish and the worker say hello (bwrap is done by then), then kill it.
            try:
                self.proc = await spawn
            except Exception:
                pass
            else:
                try:
                    await asyncio.wait_for(self.proc.stdout.readline(), 5)
                except (TimeoutError, ValueError, OSError):
                    pass
                await self.kill()
            raise
        self._stderr_task = asyncio.ensure_future(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        cap = self.limits.stderr_kb << 10
        while True:
            chunk = await self.proc.stderr.read(1 << 16)
            if not chunk:
                return
            if len(self._stderr) < cap:
                self._stderr += chunk[: cap - len(self._stderr)]

    @property
    def stderr_text(self) -> str:
        return self._stderr.decode("utf-8", "replace").strip()

    async def send(self, msg: dict) -> None:
        try:
            self.proc.stdin.write((json.dumps(msg, ensure_ascii=False) + "\n").encode())
            await self.proc.stdin.drain()
        except (ConnectionError, BrokenPipeError, RuntimeError):
            pass  # worker gone; the reader sees EOF and reports it

    async def recv(self) -> dict | None:
        """Next control message, None at EOF; ProtocolError for anything that is not one."""
        try:
            line = await self.proc.stdout.readline()
        except (ValueError, asyncio.LimitOverrunError):
            raise ProtocolError(f"the worker sent a control message over {MAX_MESSAGE_BYTES} bytes") from None
        if not line:
            return None
        try:
            msg = json.loads(line)
        except ValueError:
            raise ProtocolError(f"the worker sent a line that is not JSON: {line[:100]!r}") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
            raise ProtocolError(f"the worker sent a malformed control message: {line[:100]!r}")
        return msg

    async def kill(self) -> int | None:
        """Kill the worker and everything it started; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            try:
                # os.kill rather than proc.kill(): Popen.kill() first polls, and that poll can reap the
                # child under asyncio's child watcher, which then logs "Unknown child process".
                if self.mode == "none":
                    os.killpg(self.proc.pid, signal.SIGKILL)
                else:  # bwrap --die-with-parent: its PID namespace, and all in it, goes with it
                    os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            # A worker that outlived bwrap (killed in the middle of its set-up, before the child is tied to
            # it) still holds our pipes, and asyncio's wait() also waits for those: EOF on its control
            # channel makes it exit.
            self.proc.stdin.close()
        except (AttributeError, RuntimeError, OSError):
            pass
        try:
            rc = await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            log.warning("sandbox worker %d: still holding its pipes 30 s after SIGKILL; abandoned", self.proc.pid)
            rc = self.proc.returncode
        if self._stderr_task is not None:
            try:
                await asyncio.wait_for(self._stderr_task, 5)
            except asyncio.TimeoutError:
                self._stderr_task.cancel()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return rc
