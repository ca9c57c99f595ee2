"""A project server in its own process: `python -m <module> ...`, started the project's way (it prints
`LISTENING <port>` when ready and exits when its standard input closes, so a parent that dies never leaves
one behind). Used by benchmarks and tests that must not charge the server's CPU to the client."""
from __future__ import annotations

import os
import selectors
import subprocess
import sys
from typing import Sequence


class ServerProcess:
    """`python -m <module> <args>` with `--port 0`; `base_url` is its /v1 root once it listens."""

    def __init__(self, module: str, args: Sequence[str] = (), *, start_timeout_s: float = 60.0,
                 tree: str | None = None):
        # `tree`: run the module of another checkout (its directory first on the path), e.g. an older revision.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [tree, os.environ.get("PYTHONPATH")]))) \
            if tree else None
        self.proc = subprocess.Popen([sys.executable, "-m", module, "--port", "0", *args], cwd=tree, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self._first_line(start_timeout_s)
        if not line.startswith("LISTENING"):
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"python -m {module} did not start (exit status {self.proc.returncode}); its first "
                               f"line was {line!r}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def _first_line(self, timeout_s: float) -> str:
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout_s):
                return f"(nothing within {timeout_s:g} s)"
        return self.proc.stdout.readline()

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SimProcess(ServerProcess):
    """The simulated executor (`python -m w4s_jax.sim`): a constant `reply` after `latency_s` seconds, or
    whatever further `args` ask for."""

    def __init__(self, latency_s: float = 0.0, reply: str | None = None, args: Sequence[str] = (),
                 max_lifetime_s: float = 1800.0, tree: str | None = None):
        super().__init__("w4s_jax.sim", ["--latency_s", str(latency_s), "--max_lifetime_s", str(max_lifetime_s),
                                         *(["--reply", reply] if reply is not None else []), *args], tree=tree)
