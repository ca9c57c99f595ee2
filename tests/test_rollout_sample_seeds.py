"""Sampled executor calls carry a seed derived from (request, scope, repetition), so a server that honours
seeds (the simulated strong model) gives each evaluation the same samples however evaluations interleave."""
import asyncio

from test_rollout_support import run, sandbox_or_skip
from w4s_jax.rollout import Executor, evaluate_workflow
from w4s_jax.sim import simulated_server
from w4s_jax.tasks import get


def test_concurrent_sampled_evaluations_get_the_samples_they_get_alone():
    sandbox_or_skip()
    task = get("synth_arith")
    items = task.items("valid")[:24]
    code = task.seed_workflows()["cot_sc"]
    other = code + "\n# the same calls from another workflow\n"

    async def answers(together: bool):
        with simulated_server(task) as srv:
            async with Executor(srv.base_url, model="sim-strong") as ex:
                if together:
                    a, _ = await asyncio.gather(evaluate_workflow(code, task, items, ex),
                                                evaluate_workflow(other, task, items, ex))
                else:
                    a = await evaluate_workflow(code, task, items, ex)
        return [r.answer for r in a.records]

    alone = run(answers(False), timeout=120)
    assert run(answers(True), timeout=120) == alone
