"""The warm-start corpus: environment states paired with actions drawn uniformly from the workflow space.

Every state is rendered by the real environment (`Episode.state` and prompts.py): a synthetic task's
description, seed workflows shown as examples with plausible accuracies, and a history of 0..k earlier
turns whose actions are drawn from the space and whose feedback is `prompts.feedback_message` with cases
built from the task's train items (right answers, wrong ones, errors). Accuracies in the states are drawn
at random, independent of the workflows, and every action is drawn from `space.sample_design` whatever
the state holds: the corpus teaches the format and the space, never which workflow does well.

Records follow the trajectory contract (`trajectories.make_record`, chosen=True, reward 1), so the
trainer's `sft` objective trains on them unchanged. No JAX here.
"""
from __future__ import annotations

import json
import os
import random
from typing import Iterator

from w4s_jax.rollout import prompts
from w4s_jax.rollout.actions import extract_workflow
from w4s_jax.rollout.env import Episode, TurnEntry
from w4s_jax.tasks.workflows import CODE_WORKFLOW, WORKFLOW_NAMES
from w4s_jax.trajectories import make_record

from .render import render_action
from .space import sample_design, task_style

N_ITEMS = (16, 32, 64, 128)   # validation sizes the states mention (collection samples 32; valid has 128)
WINDOWS = (1, 2, 3, 3)        # the environment's default window is 3
FAILURE_RATE = 0.1            # history turns whose workflow could not be run
# Problems the environment reports for a workflow that failed after its repairs.
_FAILURES = (
    "Running it on one question failed: KeyError: 'answer' (workflow line {line})",
    "Running it on one question failed: TypeError: 'NoneType' object is not subscriptable (workflow line {line})",
    "workflow code, line {line}: syntax error: invalid syntax",
    "Running it on one question failed: ValueError: call_llm: num_of_response must be between 1 and 64, got 0",
    "Running it on one question failed: the item took longer than 120 s",
)
_ITEM_ERRORS = ("KeyError: 'answer'", "IndexError: list index out of range",
                "RuntimeError: execute_code: the program raised ZeroDivisionError: division by zero")


def _accuracy(rng: random.Random, n: int, lo: float, hi: float) -> float:
    p = rng.uniform(lo, hi)
    return sum(rng.random() < p for _ in range(n)) / n


def _wrong(rng: random.Random, answer):
    """A plausible wrong answer of the same kind (an integer count or a two-decimal quantity)."""
    if isinstance(answer, int):
        return answer + rng.choice([-1, 1]) * rng.randint(1, max(2, abs(answer) // 10 + 1))
    value = float(answer) * rng.choice([0.1, 0.5, 0.9, 1.1, 2.0, 10.0])
    return round(value + rng.choice([-0.01, 0.01]), 2)


def _cases(rng: random.Random, items: list, acc: float, k: int = 3) -> list[dict]:
    """Feedback cases as the environment picks them: failures first, then right answers."""
    chosen = rng.sample(items, min(k, len(items)))
    n_wrong = min(len(chosen), round(k * (1 - acc) + rng.uniform(-0.5, 0.5)))
    out = []
    for j, it in enumerate(chosen):
        if j < n_wrong and rng.random() < 0.15:
            out.append({"question": it.question, "answer": None, "expected": it.answer,
                        "error": rng.choice(_ITEM_ERRORS)})
            continue
        value = _wrong(rng, it.answer) if j < n_wrong else it.answer
        out.append({"question": it.question, "answer": {"answer": str(value)}, "expected": it.answer, "error": None})
    return out


def _examples(rng: random.Random, task, n: int) -> list[dict]:
    seeds = task.seed_workflows()
    names = [x for x in (*WORKFLOW_NAMES, CODE_WORKFLOW) if x in seeds]
    if rng.random() < 0.5:
        picked = ["cot"]
    else:
        picked = sorted(rng.sample(names, rng.randint(1, 3)), key=names.index)
    return [{"name": x, "code": seeds[x], "valid_acc": _accuracy(rng, n, 0.5, 0.92)} for x in picked]


def random_episode(rng: random.Random, task, *, max_history: int) -> tuple[Episode, int]:
    """An episode of `task` with 0..max_history earlier turns, and the window its state is shown with."""
    n = rng.choice(N_ITEMS)
    train = task.items("train")
    items = rng.sample(train, n)
    ep = Episode(f"warmstart-{rng.getrandbits(48):012x}", task, items, _examples(rng, task, n), seed=rng.getrandbits(31))
    style = task_style(task)
    for turn in range(rng.randint(0, max_history)):
        action = render_action(sample_design(rng), style, rng)
        code = extract_workflow(action)
        if rng.random() < FAILURE_RATE:
            error = rng.choice(_FAILURES).format(line=rng.randint(2, 20))
            feedback = prompts.feedback_message(valid_acc=None, n_items=n, previous_acc=None, best_acc=None,
                                                cases=[], status="failed", error=error)
            ep.history.append(TurnEntry(turn, action, code, None, "failed", feedback))
            continue
        acc = _accuracy(rng, n, 0.25, 0.95)
        feedback = prompts.feedback_message(valid_acc=acc, n_items=n, previous_acc=ep.previous_acc(),
                                            best_acc=ep.best_acc(), cases=_cases(rng, items, acc), status="ok")
        ep.history.append(TurnEntry(turn, action, code, acc, "ok", feedback))
    return ep, rng.choice(WINDOWS)


def corpus_records(n: int, *, tasks: list, seed: int, max_history: int = 4,
                   run_id: str = "meta-agent-warmstart") -> Iterator[dict]:
    """`n` trajectory records (one state, one action each), tasks taken in turn."""
    rng = random.Random(seed)
    styles = {t.name: task_style(t) for t in tasks}
    for i in range(n):
        task = tasks[i % len(tasks)]
        ep, window = random_episode(rng, task, max_history=max_history)
        design = sample_design(rng)
        action = render_action(design, styles[task.name], rng)
        yield make_record(run_id=run_id, episode_id=ep.episode_id, task=task.name, turn=ep.turn, candidate=0,
                          messages=ep.state(window), action=action, reward=1.0, valid_acc=None, chosen=True,
                          status="ok", usage={}, meta={"design": design.as_dict(), "window": window})


def write_corpus(path: str, n: int, *, tasks: list, seed: int, max_history: int = 4) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        for rec in corpus_records(n, tasks=tasks, seed=seed, max_history=max_history):
            f.write(json.dumps(rec) + "\n")
    return path
