"""Shared helpers for the rollout tests (imported by test_rollout_*.py; holds no tests itself)."""
from __future__ import annotations

import asyncio
import os
import re

import pytest

from w4s_jax.rollout import SandboxUnavailableError, check_sandbox
from w4s_jax.sim import FaultPlan, Responder, SimServer
from w4s_jax.tasks.base import Item


class ArithTask:
    """Questions "Question k: what is a + b?"; the scripted server knows the answers."""
    name = "arith"
    description = "Add two integers; answer with the number only."

    def __init__(self, n: int = 12):
        self._items = [Item(id=f"q{k}", question=f"Question {k}: what is {k} + {2 * k + 1}?", answer=str(3 * k + 1))
                       for k in range(n)]

    def items(self, split: str = "valid"):
        return list(self._items)

    def score(self, prediction, item) -> float:
        nums = re.findall(r"-?\d+", str(prediction))
        return 1.0 if nums and nums[-1] == item.answer else 0.0

    def seed_workflows(self):
        return {"cot": COT}


def scripted_responder() -> Responder:
    """Replies whose correctness is known in advance, per question k:

    - plain text: "step by step ... the answer is <a+b>" for even k, an off-by-one answer for odd k;
    - json (self-consistency, 5 samples): 3 of 5 correct for k % 3 != 0, only 2 of 5 for k % 3 == 0;
    - code generation: a python snippet computing a+b.
    """
    def respond(body: dict, choice: int) -> str:
        user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
        m = re.search(r"Question (\d+): what is (\d+) \+ (\d+)", user)
        if not m:
            return "I do not know"
        k, a, b = (int(x) for x in m.groups())
        wants_json = (body.get("response_format") or {}).get("type") == "json_object"
        if "WRITE CODE" in user:
            code = f"def solution():\n    return {a} + {b}\n"
            return ('{"code": ' + __import__("json").dumps(code) + "}") if wants_json else code
        if wants_json:
            good = [True, True, True, False, False] if k % 3 else [True, True, False, False, False]
            ans = a + b if good[choice % 5] else a + b + 1
            return '{"reasoning": "adding", "answer": "%d"}' % ans
        ans = a + b if k % 2 == 0 else a + b + 1
        return f"Let me think step by step. {a} plus {b}. The answer is {ans}"
    return respond


def expected_accuracy(kind: str, n: int) -> float:
    if kind == "cot":
        return sum(1 for k in range(n) if k % 2 == 0) / n
    if kind == "sc":
        return sum(1 for k in range(n) if k % 3) / n
    if kind == "code":
        return 1.0
    raise ValueError(kind)


# Workflows in the style of the public W4S code (solver(agent, task), agent.call_* with its argument names).
COT = '''
def solver(agent, task: str):
    messages = [{"role": "user", "content": f"{task}\\nThink step by step, then give the final answer."}]
    response = agent.call_llm(messages=messages, model="gpt-4o-mini", temperature=0.0)
    return response[0].split("answer is")[-1].strip()
'''

SELF_CONSISTENCY = '''
from collections import Counter

def solver(agent, task: str):
    messages = [{"role": "user", "content": task}]
    responses = agent.call_json_format_llm(
        messages=messages, model="gpt-4o-mini", temperature=0.8, num_of_response=5,
        agent_role="math problem solver", return_dict_keys=["reasoning", "answer"],
        instructions="Give your reasoning, then the final answer as a number.")
    answers = [str(r["answer"]).strip() for r in responses]
    return Counter(answers).most_common(1)[0][0]
'''

CODE_GEN = '''
def solver(agent, task: str):
    messages = [{"role": "user", "content": f"WRITE CODE that solves: {task}"}]
    out = agent.call_json_format_llm(messages=messages, model="gpt-4o-mini", temperature=0.0,
                                     agent_role="python programmer", return_dict_keys=["code"])[0]
    result = agent.execute_code(out["code"], timeout=5)
    return str(result)
'''


def sandbox_or_skip() -> None:
    try:
        check_sandbox()
    except SandboxUnavailableError as e:  # pragma: no cover - CI installs bubblewrap
        pytest.skip(str(e))


def start_server(faults: FaultPlan | None = None, latency_s: float = 0.0) -> SimServer:
    return SimServer(scripted_responder(), faults=faults, latency_s=latency_s, max_lifetime_s=300).start()


def run(coro, timeout: float = 120):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def sandbox_processes() -> list[int]:
    """Host pids of processes running as a sandbox uid (the privileged mode's fresh uids)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        uid = int(line.split()[1])
                        if 10_000_000 <= uid < 1_010_000_000:
                            out.append(int(pid))
                        break
        except OSError:
            pass
    return out
