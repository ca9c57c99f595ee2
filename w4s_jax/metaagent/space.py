"""The space of workflows the tiny meta-agent writes: a technique plus knobs, sampled uniformly.

A point of the space is a `Design`: one of seven techniques (chain of thought, self-consistency by majority
vote, self-refinement with a reviewer, debate, dynamic role routing, code generation run with
`agent.execute_code`, decomposition into sub-questions) with

- shared knobs, which every technique has: the solver's role (the task's expert role or a generic one),
  whether reasoning is asked for (a `reasoning` key placed before `answer` and a step-by-step instruction),
  whether the answer-format instruction is the task's precise one or a loose one, and the temperature of
  the answering calls;
- its own knobs: how many samples and whether they come from one call (`num_of_response`) or a loop of
  calls, how many review rounds and whether the review is asked step by step, how many debaters and debate
  rounds, how many experts the router chooses from, how many code attempts and whether a failed program
  falls back to a reasoning call, how many sub-questions.

Sampling is uniform and blind to what any executor rewards: the technique uniformly, then every knob
uniformly and independently (so every knob combination of a technique is equally likely). The space has
32 shared combinations times 28 technique variants, 896 designs per task; the few that do best under a given
executor are rare by chance, so a policy that learns them shows it.

`sample_action(rng, task)` is a whole meta-agent reply: a short analysis and one ```python block with a
complete `solver(agent, task)` (standard library only, returns {"answer": ...}) in the executor API of
DESIGN.md. `describe(code)` reads a workflow's technique and knobs back from its source (any source: the
model's own outputs too). No JAX here: the rollout side and the corpus builder use it.
"""
from __future__ import annotations

import ast
import itertools
import random
from dataclasses import dataclass
from typing import Any

TECHNIQUES = ("cot", "self_consistency", "self_refine", "debate", "dynamic_role", "code", "decomposition")

SHARED_KNOBS: dict[str, tuple] = {
    "role": ("expert", "generic"),
    "reasoning": (True, False),
    "answer_format": ("precise", "loose"),
    "temperature": (0.0, 0.4, 0.7, 1.0),
}

TECHNIQUE_KNOBS: dict[str, dict[str, tuple]] = {
    "cot": {},
    "self_consistency": {"samples": (3, 5, 7), "batching": ("n", "loop")},
    "self_refine": {"rounds": (1, 2, 3), "review": ("step_by_step", "plain")},
    "debate": {"debaters": (2, 3, 4), "rounds": (1, 2)},
    "dynamic_role": {"experts": (3, 5)},
    "code": {"attempts": (1, 2), "fallback": ("cot", "none")},
    "decomposition": {"subquestions": (2, 3, 4)},
}

# When a task's seed workflows do not say (see `task_style`).
DEFAULT_ROLE = "expert problem solver"
DEFAULT_FORMAT = "Put only the final answer in `answer`, with nothing else."


@dataclass(frozen=True)
class Design:
    """A point of the space: the technique and the value of each of its knobs (shared ones included)."""
    technique: str
    knobs: tuple[tuple[str, Any], ...]   # sorted (name, value) pairs

    @classmethod
    def of(cls, technique: str, **knobs) -> "Design":
        space = knob_space(technique)
        if set(knobs) != set(space):
            raise ValueError(f"{technique}: knobs {sorted(knobs)} given, expected {sorted(space)}")
        for k, v in knobs.items():
            if v not in space[k]:
                raise ValueError(f"{technique}: knob {k}={v!r} is not one of {space[k]}")
        return cls(technique, tuple(sorted(knobs.items())))

    def __getitem__(self, name: str):
        return dict(self.knobs)[name]

    def as_dict(self) -> dict:
        return {"technique": self.technique, **dict(self.knobs)}


@dataclass(frozen=True)
class TaskStyle:
    """What the workflows of one task fill in: the fitting expert role and the precise answer format."""
    role: str
    answer_format: str


def knob_space(technique: str) -> dict[str, tuple]:
    if technique not in TECHNIQUE_KNOBS:
        raise ValueError(f"unknown technique {technique!r}; known: {TECHNIQUES}")
    return {**SHARED_KNOBS, **TECHNIQUE_KNOBS[technique]}


def designs(technique: str | None = None) -> list[Design]:
    """Every design of one technique (or of all), in a fixed order."""
    out = []
    for t in ([technique] if technique else TECHNIQUES):
        space = knob_space(t)
        names = sorted(space)
        out += [Design(t, tuple(zip(names, values))) for values in itertools.product(*(space[n] for n in names))]
    return out


def sample_design(rng: random.Random) -> Design:
    """The technique uniformly, then each knob uniformly and independently."""
    technique = rng.choice(TECHNIQUES)
    space = knob_space(technique)
    return Design(technique, tuple((k, rng.choice(space[k])) for k in sorted(space)))


def probability(design: Design) -> float:
    """The chance `sample_design` draws this design."""
    space = knob_space(design.technique)
    p = 1.0 / len(TECHNIQUES)
    for values in space.values():
        p /= len(values)
    return p


def _cot_literal(code: str, keyword: str) -> str | None:
    """The string literal passed as `keyword=` to the first agent call of a seed workflow, if any."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == keyword and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    return kw.value.value
                if kw.arg == keyword and isinstance(kw.value, ast.Name):
                    # instructions=instructions: the variable's literal assignment
                    for a in ast.walk(tree):
                        if (isinstance(a, ast.Assign) and any(isinstance(t, ast.Name) and t.id == kw.value.id
                                                              for t in a.targets)
                                and isinstance(a.value, ast.Constant) and isinstance(a.value.value, str)):
                            return a.value.value
    return None


def task_style(task) -> TaskStyle:
    """The task's expert role and precise answer format, read from its `cot` seed workflow (the seeds
    fill both in; w4s_jax/tasks/workflows.py), else generic defaults."""
    from w4s_jax.tasks.workflows import REASONING_FIRST

    cot = (task.seed_workflows() or {}).get("cot", "") if hasattr(task, "seed_workflows") else ""
    role = _cot_literal(cot, "agent_role") or DEFAULT_ROLE
    fmt = _cot_literal(cot, "instructions") or DEFAULT_FORMAT
    if fmt.startswith(REASONING_FIRST):
        fmt = fmt[len(REASONING_FIRST):]
    return TaskStyle(role=role, answer_format=fmt.strip() or DEFAULT_FORMAT)


def sample_action(rng: random.Random, task, *, style: TaskStyle | None = None) -> str:
    """A meta-agent reply for `task`: an analysis and one python block, its design drawn by `sample_design`."""
    from .render import render_action

    return render_action(sample_design(rng), style or task_style(task), rng)


def describe(code: str) -> dict:
    """Technique and knobs of a workflow (or of a whole reply holding one): see describe.py."""
    from .describe import describe as _describe

    return _describe(code)

