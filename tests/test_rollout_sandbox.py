"""Attack suite: hostile workflows are contained, the service keeps running, other evaluations are fine."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from test_rollout_support import (COT, ArithTask, expected_accuracy, run, sandbox_or_skip, sandbox_processes,
                                  start_server)
from w4s_jax.rollout import Executor, SandboxUnavailableError, evaluate_workflow
from w4s_jax.rollout.sandbox import SandboxLimits

pytestmark = pytest.mark.timeout(240)
SECRET = "sk-test-SECRET-must-not-leak-0451"

# Each attack is the body of `attack(agent, port)`; the solver runs it for the item named "attack"
# and answers normally for the others, so we also see that its neighbours are unaffected where that is
# possible at all (a process-wide attack like os._exit takes its own evaluation down, nobody else's).
ATTACKS = {
    "read_env": "import os\nreturn repr(dict(os.environ))",
    "read_proc": """
import os
found = []
for pid in os.listdir('/proc'):
    if pid.isdigit():
        for f in ('environ', 'cmdline'):
            try:
                found.append(open(f'/proc/{pid}/{f}', 'rb').read().decode('latin-1'))
            except OSError as e:
                found.append(f'{pid}/{f}: {e.strerror}')
return ' | '.join(found)""",
    "write_outside": """
import os
res = []
for p in ('/usr/pwned', '/opt/w4s/pwned', '/opt/w4s/agent_api.py', '/etc/pwned', '/pwned', '/proc/pwned',
          os.path.expanduser('~root/pwned'), '/work/pwned'):
    try:
        with open(p, 'w') as f:
            f.write('x')
        res.append('WROTE ' + p)
    except OSError as e:
        res.append(f'{p}: {e.strerror}')
return '; '.join(res)""",
    "network": """
import socket
res = []
for addr in (('127.0.0.1', port), ('10.0.0.1', 80), ('1.1.1.1', 443)):
    try:
        socket.create_connection(addr, timeout=1).close()
        res.append('CONNECTED %s' % (addr,))
    except OSError as e:
        res.append(f'{addr}: {e.strerror or e}')
return '; '.join(res)""",
    "fork_bomb": """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass""",
    "memory_bomb": """
hog = []
while True:
    hog.append(bytearray(32 << 20))""",
    "infinite_loop": "while True:\n    pass",
    "fill_disk": """
import os
n = 0
with open('/tmp/fill', 'wb') as f:
    while True:
        f.write(b'x' * (1 << 20)); f.flush(); n += 1""",
    "flood_stdout": """
import os, sys
for _ in range(200000):
    print('x' * 1000)
    os.write(1, b'y' * 1000)
    os.write(2, b'z' * 1000)
return 'flooded'""",
    "setsid_escape": """
import os, time
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        os.setsid()
        time.sleep(600)
    os._exit(0)
os.waitpid(pid, 0)
return 'escaped'""",
    "os_exit": "import os\nos._exit(7)",
    "sys_exit": "import sys\nsys.exit(3)",
    "deep_recursion": "def f(n):\n    return f(n + 1) + 1\nreturn f(0)",
    "deep_recursion_raised_limit": """
import sys
sys.setrecursionlimit(10 ** 8)
def f(n):
    return f(n + 1) + 1
return f(0)""",
    "exec_code_attacks": """
out = []
for snippet in ("import os\\nwhile True:\\n    os.fork()", "x = bytearray(1 << 40)", "while True: pass",
                "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(100)\\ntime.sleep(100)"):
    try:
        out.append(repr(agent.execute_code(snippet, timeout=1)))
    except BaseException as e:
        out.append(type(e).__name__ + ("(" + str(e)[:60].replace(" ", "_") + ")" if type(e).__name__ == "Exception" else ""))
return ' '.join(out)""",
}


def _workflow(body: str) -> str:
    indented = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return (f"def attack(agent, port):\n{indented}\n\n"
            "def solver(agent, task):\n"
            "    if task.startswith('ATTACK'):\n"
            "        return attack(agent, int(task.split()[1]))\n"
            "    r = agent.call_llm(messages=[{'role': 'user', 'content': task}], temperature=0)\n"
            "    return r[0].split('answer is')[-1].strip()\n")


class _AttackTask(ArithTask):
    def __init__(self, port):
        super().__init__(4)
        from w4s_jax.tasks.base import Item
        self._items = [Item("attack", f"ATTACK {port}", "")] + self._items


@pytest.fixture(scope="module")
def outcomes():
    sandbox_or_skip()
    os.environ["W4S_TEST_EXECUTOR_KEY"] = SECRET
    srv = start_server()
    before = set(sandbox_processes())
    task = _AttackTask(srv.port)
    limits = SandboxLimits(memory_mb=512, scratch_mb=16, file_mb=8, cpu_s=60, extra_procs=32)

    async def go():
        async with Executor(srv.base_url, model="sim", api_key_env="W4S_TEST_EXECUTOR_KEY") as ex:
            async def one(name, body):
                t = time.perf_counter()
                # Filling memory up to the limit takes seconds on a loaded box (pages are touched).
                timeout = 30 if name == "memory_bomb" else 3
                r = await evaluate_workflow(_workflow(body), task, task.items("valid"), ex, threads=5,
                                            item_timeout_s=timeout, eval_timeout_s=60, limits=limits)
                return name, r, time.perf_counter() - t
            # All attacks at once, plus an honest evaluation alongside them.
            jobs = [one(n, b) for n, b in ATTACKS.items()]
            jobs.append(one("honest", "return 'unused'"))
            done = await asyncio.gather(*jobs)
            # The service is still fine afterwards.
            after = await evaluate_workflow(COT, ArithTask(6), ArithTask(6).items("valid"), ex)
            return {n: (r, dt) for n, r, dt in done}, after
    try:
        res, after = run(go(), timeout=200)
    finally:
        srv.stop()
        os.environ.pop("W4S_TEST_EXECUTOR_KEY", None)
    # The kernel tears a PID namespace down asynchronously after its init dies: allow it a moment.
    for _ in range(100):
        leftovers = set(sandbox_processes()) - before
        if not leftovers:
            break
        time.sleep(0.1)
    return res, after, leftovers


def _attack_record(res, name):
    r, _ = res[name]
    rec = r.records[0]
    assert rec.item_id == "attack"
    return r, rec


def test_service_survives_and_other_evaluations_are_unaffected(outcomes):
    res, after, leftovers = outcomes
    assert after.accuracy == pytest.approx(expected_accuracy("cot", 6))
    honest, _ = res["honest"]
    assert honest.infra_errors == 0 and [x.correct for x in honest.records[1:]] == [True, False, True, False]
    assert all(dt < 60 for _, dt in res.values())
    assert not leftovers, f"sandbox processes left running: {leftovers}"


def test_no_attack_is_counted_as_infrastructure_error(outcomes):
    res, _, _ = outcomes
    for name in ATTACKS:
        r, rec = _attack_record(res, name)
        assert rec.infra_error is None, (name, rec)
        assert rec.correct is False


def test_api_key_is_not_visible(outcomes):
    res, _, _ = outcomes
    for name in ("read_env", "read_proc"):
        _, rec = _attack_record(res, name)
        assert SECRET not in str(rec.answer) + str(rec.error)
    _, rec = _attack_record(res, "read_env")
    assert "W4S_TEST_EXECUTOR_KEY" not in str(rec.answer) and "HOME" in str(rec.answer)


def test_no_write_outside_scratch(outcomes):
    res, _, _ = outcomes
    _, rec = _attack_record(res, "write_outside")
    assert "WROTE" not in str(rec.answer), rec.answer
    assert not os.path.exists("/opt/w4s/pwned") and not os.path.exists("/pwned")


def test_no_network(outcomes):
    res, _, _ = outcomes
    _, rec = _attack_record(res, "network")
    assert "CONNECTED" not in str(rec.answer) and rec.answer, rec


@pytest.mark.parametrize("name,needle", [
    ("infinite_loop", "TimeoutError"),
    ("fork_bomb", ""),
    ("memory_bomb", "MemoryError"),
    ("fill_disk", "OSError"),
    ("deep_recursion", "RecursionError"),
    ("sys_exit", "SystemExit"),
])
def test_item_level_attacks_fail_only_their_item(outcomes, name, needle):
    res, _, _ = outcomes
    r, rec = _attack_record(res, name)
    assert rec.error and needle in rec.error, rec
    if name not in ("fork_bomb", "memory_bomb"):  # those may starve their own neighbours, by design only
        assert [x.correct for x in r.records[1:]] == [True, False, True, False], (name, r.records)


def test_flooding_output_is_dropped(outcomes):
    res, _, _ = outcomes
    r, rec = _attack_record(res, "flood_stdout")
    assert rec.answer == "flooded" or (rec.error and "TimeoutError" in rec.error)
    assert [x.correct for x in r.records[1:]] == [True, False, True, False]


@pytest.mark.parametrize("name", ["os_exit", "deep_recursion_raised_limit"])
def test_worker_crash_is_a_workflow_error_of_that_evaluation(outcomes, name):
    res, _, _ = outcomes
    r, rec = _attack_record(res, name)
    assert rec.error and rec.infra_error is None
    assert r.infra_errors == 0 and r.note is None or "exited" in (r.note or "")


def test_setsid_escape_dies_with_the_sandbox(outcomes):
    res, _, leftovers = outcomes
    _, rec = _attack_record(res, "setsid_escape")
    assert rec.answer == "escaped"  # it did detach inside the sandbox ...
    assert not leftovers            # ... and was killed with it


def test_execute_code_attacks_are_contained(outcomes):
    res, _, _ = outcomes
    _, rec = _attack_record(res, "exec_code_attacks")
    fork, mem, loop, escape = str(rec.answer).split()
    assert fork.startswith(("TimeoutError", "Exception(execute_code:_BlockingIOError")), rec
    assert mem.startswith("Exception(execute_code:_MemoryError"), rec
    assert loop == "TimeoutError" and escape == "TimeoutError", rec


def test_refuses_without_a_working_sandbox(monkeypatch):
    from w4s_jax.rollout import sandbox as sb
    monkeypatch.setattr(sb.shutil, "which", lambda name: None)
    monkeypatch.setattr(sb, "_PROBED", {})
    task = ArithTask(2)

    async def go(mode):
        async with Executor("http://127.0.0.1:9/v1", model="sim") as ex:
            return await evaluate_workflow(COT, task, task.items("valid"), ex, sandbox=mode, eval_timeout_s=5)
    with pytest.raises(SandboxUnavailableError, match="sandbox='none'"):
        run(go("bwrap"))
    with pytest.raises(ValueError, match="sandbox must be one of"):
        run(go("nsjail"))


def test_sandbox_none_is_explicit_and_loud(caplog):
    srv = start_server()
    task = ArithTask(4)

    async def go():
        async with Executor(srv.base_url, model="sim") as ex:
            return await evaluate_workflow(COT, task, task.items("valid"), ex, sandbox="none")
    try:
        with caplog.at_level("WARNING"):
            r = run(go())
    finally:
        srv.stop()
    assert r.accuracy == pytest.approx(expected_accuracy("cot", 4)) and r.sandbox == "none"
    assert any("SANDBOX DISABLED" in m for m in caplog.messages)



def test_execute_code_snippets_inherit_no_descriptor_but_their_result_pipe():
    """Untrusted code run by execute_code cannot reach the worker's control channel or other pipes."""
    sandbox_or_skip()
    code = ("def solver(agent, task):\n"
            "    snippet = 'import os\\ndef solution():\\n    return sorted(int(f) for f in os.listdir(\"/proc/self/fd\"))'\n"
            "    return {'answer': agent.execute_code(snippet)}\n")
    task = ArithTask(1)

    async def go():
        async with Executor("http://127.0.0.1:9/v1", model="sim") as ex:
            return await evaluate_workflow(code, task, task.items("valid"), ex)
    rec = run(go(), timeout=60).records[0]
    assert rec.error is None, rec.error
    fds = rec.answer["answer"]
    assert fds[:3] == [0, 1, 2] and len(fds) <= 5, fds   # stdio, the result pipe, listdir's own descriptor
