"""A stand-in task, a scripted executor and a scripted meta-agent for the environment and collection tests.

Task "Question k: what is a + b?" with train k in [0, 40), valid [100, 116), test [200, 216). The executor
answers a request correctly iff k % 8 < LEVEL, where "LEVEL d" appears in the request (default 4): a
workflow's accuracy on the 40 train items is exactly LEVEL/8, so every reward rule can be checked exactly.
The meta-agent's outputs are scripted per (turn, candidate) and per repair round.
"""
from __future__ import annotations

import json
import re

from w4s_jax.sim import SimServer
from w4s_jax.tasks import Item, SplitTask

TRAIN, VALID, TEST = range(0, 40), range(100, 116), range(200, 216)


def question(k: int) -> str:
    return f"Question {k}: what is {k} + {2 * k + 1}?"


def score(pred, item) -> float:
    if isinstance(pred, dict):
        pred = pred.get("answer")
    nums = re.findall(r"-?\d+", str(pred))
    return 1.0 if nums and nums[-1] == item.answer else 0.0


def workflow(level: int | None, *, body: str | None = None) -> str:
    """A workflow whose accuracy is level/8 (LEVEL appears in its prompt)."""
    prefix = f"LEVEL {level}\\n" if level is not None else ""
    body = body or f'''    reply = agent.call_llm(messages=[{{"role": "user", "content": "{prefix}" + task}}], temperature=0.0)[0]
    numbers = re.findall(r"-?\\d+", reply)
    return {{"answer": numbers[-1] if numbers else ""}}'''
    return f"import re\n\n\ndef solver(agent, task):\n{body}\n"


def make_task(data_dir=None) -> SplitTask:
    items = {name: [Item(f"{name}-{k}", question(k), str(3 * k + 1)) for k in ks]
             for name, ks in (("train", TRAIN), ("valid", VALID), ("test", TEST))}
    return SplitTask(name="env_arith", description="Add two integers. Answer with the number only.",
                     splits=items, scorer=score, workflows={"cot": workflow(None), "careful": workflow(6)})


def executor_reply(body: dict, choice: int) -> str:
    user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    m = re.search(r"Question (\d+): what is (\d+) \+ (\d+)", user)
    if not m:
        return "I cannot tell which question this is."
    k, a, b = (int(x) for x in m.groups())
    lv = re.search(r"LEVEL (\d)", user)
    level = int(lv.group(1)) if lv else 4
    return f"The answer is {a + b if k % 8 < level else a + b + 1}."


def reply_with(code: str, note: str = "Analysis: trying this.") -> str:
    return f"{note}\n\n```python\n{code}```\n"


RUNTIME_ERROR = workflow(None, body="    return {'answer': 1 / 0}")
PROSE = "I would ask the model to be careful and then vote on the answers."
UNCLOSED = "Here it is:\n```python\ndef solver(agent, task):\n    return {'answer': '1'}\n"

# turn -> candidate -> list of replies: [first output, repair 1, repair 2, ...]
SCRIPT = {
    0: [[reply_with(workflow(4))],                                   # 0.5  -> reward 0 (not above 0.5)
        [reply_with(workflow(6))],                                   # 0.75 -> reward 1, chosen
        [PROSE, reply_with(RUNTIME_ERROR), reply_with(workflow(5))]],  # 0.625 after 2 repairs -> reward 1
    1: [[reply_with(workflow(3))],                                   # 0.375 -> 0 ; chosen (best ok)
        [UNCLOSED, UNCLOSED, UNCLOSED, UNCLOSED],                    # failed after 3 repairs
        [reply_with(workflow(2))]],                                  # 0.25
    2: [[reply_with(workflow(4))],                                   # 0.5 > previous 0.375, < best .75 -> 0.5
        [reply_with(workflow(8))],                                   # 1.0 -> 1, chosen
        [reply_with(workflow(1))]],                                  # 0.125 -> 0
}


def meta_agent_reply(body: dict, choice: int) -> str:
    msgs = body["messages"]
    last = msgs[-1]["content"]
    if last.startswith("Your reply could not be used"):
        # a repair: find the candidate by the failed output and count the repair rounds in this request
        failed = msgs[-2]["content"]
        turn = sum(1 for m in msgs[:-2] if m["role"] == "assistant")
        for cand in SCRIPT[turn]:
            if failed in cand:
                return cand[min(cand.index(failed) + 1, len(cand) - 1)]
        raise ValueError("repair of an unknown output")
    turn = sum(1 for m in msgs if m["role"] == "assistant")
    return SCRIPT[turn][choice][0]


def start_servers(latency_s: float = 0.0) -> tuple[SimServer, SimServer]:
    ex = SimServer(executor_reply, latency_s=latency_s).start()
    ma = SimServer(meta_agent_reply).start()
    ex.log_requests = ma.log_requests = True
    return ex, ma


def collect_config(workdir, ex: SimServer, ma: SimServer, **over):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "configs"))
    from collect import get_config  # noqa: E402
    c = get_config()
    c.workdir = str(workdir)
    c.task = "env_support:make_task"
    c.eval_items = 0
    c.episodes, c.turns, c.candidates = 1, 3, 3
    c.window = 5
    c.examples = "cot"
    c.executor.base_url, c.executor.model = ex.base_url, "sim"
    c.meta_agent.base_url, c.meta_agent.model = ma.base_url, "scripted-meta"
    c.sandbox.pool_size = 4
    c.progress = False
    for k, v in over.items():
        node = c
        *path, last = k.split(".")
        for p in path:
            node = node[p]
        node[last] = v
    return c


def all_request_text(*servers) -> str:
    return "\n".join(json.dumps(b) for s in servers for b in s.requests_log)


def make_task_without_train(data_dir=None) -> SplitTask:
    t = make_task(data_dir)
    return SplitTask(name="env_arith_no_train", description=t.description,
                     splits={"valid": t.items("valid"), "test": t.items("test")}, scorer=score,
                     workflows=t.workflows)


def make_tiny_policy(path):
    """A random tiny Qwen2 HF checkpoint with the tiny chat tokenizer, with room for the env's long states
    (it writes no workflow: every candidate it proposes fails to parse, which is all the plumbing tests need)."""
    from hf_reference import make_hf_model
    from tiny_tokenizer import make_tiny_tokenizer

    make_hf_model("qwen2", vocab=320, hidden=64, inter=96, layers=2, heads=4, kv_heads=2, seed=1,
                  max_pos=8192).save_pretrained(path)
    make_tiny_tokenizer().save_pretrained(path)
    return path
