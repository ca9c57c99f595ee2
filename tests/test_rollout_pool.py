"""WorkerPool: started workers serve evaluations, each exactly one; dead ones are never handed out."""
from __future__ import annotations

import os
import signal

import pytest

from test_rollout_support import (COT, ArithTask, expected_accuracy, run, sandbox_or_skip, sandbox_processes,
                                  start_server)
from w4s_jax.rollout import Executor, SandboxLimits, WorkerPool, evaluate_workflow

pytestmark = pytest.mark.timeout(180)

# Writes a marker into its scratch dir and reports whether a marker was already there: a worker (or its
# /tmp) reused between evaluations would show up as "seen".
MARKER = '''
import os

def solver(agent, task):
    path = "/tmp/w4s-pool-marker"
    seen = os.path.exists(path)
    open(path, "w").write("x")
    answer = agent.call_llm(messages=[{"role": "user", "content": task}], temperature=0.0)[0]
    return ("seen " if seen else "") + answer.split("answer is")[-1].strip()
'''


@pytest.fixture(scope="module")
def server():
    sandbox_or_skip()
    srv = start_server()
    yield srv
    srv.stop()


def test_pooled_evaluations_score_like_cold_ones_and_never_share_a_worker(server):
    task = ArithTask(1)  # one item per evaluation: a marker from another evaluation means a reused worker

    async def go():
        async with Executor(server.base_url, model="sim") as ex:
            cold = await evaluate_workflow(COT, ArithTask(6), ArithTask(6).items(), ex)
            async with WorkerPool(2) as pool:
                assert len(pool._idle) == 2 and pool.started == 2
                pooled = await evaluate_workflow(COT, ArithTask(6), ArithTask(6).items(), ex, pool=pool)
                markers = []
                for _ in range(4):
                    await pool.fill()  # the replacement of the last one is ready: this one comes warm
                    markers.append(await evaluate_workflow(MARKER, task, task.items(), ex, pool=pool))
                await pool.fill()
                stats = (pool.taken, pool.cold, len(pool._idle))
            return cold, pooled, markers, stats
    cold, pooled, markers, (taken, n_cold, idle) = run(go())
    assert cold.accuracy == pooled.accuracy == pytest.approx(expected_accuracy("cot", 6))
    assert [r.records[0].answer for r in markers] == ["1"] * 4, [r.records[0] for r in markers]
    assert taken == 5 and n_cold == 0 and idle == 2  # every evaluation got a started worker; refilled after
    assert not sandbox_processes()


def test_a_worker_that_died_while_idle_is_not_handed_out(server):
    async def go():
        async with Executor(server.base_url, model="sim") as ex:
            async with WorkerPool(1) as pool:
                os.kill(pool._idle[0].proc.pid, signal.SIGKILL)
                await pool._idle[0].proc.wait()
                r = await evaluate_workflow(COT, ArithTask(4), ArithTask(4).items(), ex, pool=pool)
                return r, pool.taken, pool.cold
    r, taken, n_cold = run(go())
    assert r.accuracy == pytest.approx(expected_accuracy("cot", 4)) and r.note is None
    assert taken == 0 and n_cold == 1


def test_pool_refuses_other_sandbox_settings_and_closes_cleanly(server):
    async def go():
        async with Executor(server.base_url, model="sim") as ex:
            pool = WorkerPool(2, limits=SandboxLimits(memory_mb=2048))
            await pool.fill()
            with pytest.raises(ValueError, match="pool's workers"):
                await evaluate_workflow(COT, ArithTask(2), ArithTask(2).items(), ex, pool=pool)
            await pool.close()
            with pytest.raises(RuntimeError, match="closed"):
                await pool.take()
    run(go())
    assert not sandbox_processes()
    with pytest.raises(ValueError, match="size"):
        WorkerPool(0)


def _worker_processes() -> set[int]:
    out = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"sandbox_worker.py" in f.read():
                        out.add(int(pid))
            except OSError:
                pass
    return out


def test_closing_or_cancelling_during_start_up_leaves_no_process(server):
    """Start-ups cut short (pool closed at once, an evaluation cancelled while spawning) leave nothing behind,
    not even bwrap's inner half, and never hang."""
    import asyncio
    before = _worker_processes()

    async def go():
        for delay in (0, 0.002, 0.01, 0.05):
            pool = WorkerPool(3, prefill=False)
            pool.replenish()
            await asyncio.sleep(delay)
            await asyncio.wait_for(pool.close(), 30)
        async with Executor(server.base_url, model="sim") as ex:
            for delay in (0, 0.002, 0.01):
                t = asyncio.ensure_future(evaluate_workflow(COT, ArithTask(2), ArithTask(2).items(), ex))
                await asyncio.sleep(delay)
                t.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await asyncio.wait_for(t, 30)
    run(go())
    leftovers = _worker_processes() - before
    assert not leftovers, leftovers
