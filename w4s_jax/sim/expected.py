"""Expected accuracy of the seed workflows under the simulated model, worked out from `model.py` alone.

These are the model's predictions, computed by hand from the documented probabilities and each seed
workflow's control flow (w4s_jax/tasks/workflows.py), not by running anything: the tests compare them
with accuracies measured through the real stack (sandbox, Executor, HTTP, the simulated server).

What the seed workflows ask, as the model reads it (every call has a fitting role unless said otherwise,
asks for step-by-step reasoning, and states the answer's format precisely):
- cot: one greedy solve.
- cot_sc: 5 samples at T = 0.8 (independent), majority vote.
- code: one greedy code request (reasoning asked: "Explain your plan"); its program always returns a value,
  so the fallback call never happens.
- self_refine: a greedy solve v1; a step-by-step review of v1 (catch 0.7, false rejection 0.1); if rejected,
  a revision v2 (fresh draw); a review of v2; if rejected, a revision v3, returned unchecked. A value reviewed
  twice gets the same verdict, a value revised twice the same revision (both are functions of it).
- debate: 3 samples at T = 0.8; each debater is shown its own answer first, then the two others; adopts the
  most frequent (a tie: its own) with probability 0.6, else re-solves at T = 0.8; majority of the three
  (a three-way tie: the first debater's answer).
- dynamic_role: the router picks the fitting expert with probability 0.85, else a non-fitting one; then a
  greedy solve in that role.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

from . import model as M
from .items import ItemProfile

SEED_WORKFLOWS = ("cot", "cot_sc", "code", "self_refine", "debate", "dynamic_role")


def outcome_probs(p: float, prose: float = 0.0) -> list[float]:
    """Probabilities of the answers one draw states: [right, D1, D2, D3] in digits, then the same in words."""
    digits = [p, *((1 - p) * w for w in M.DISTRACTOR_WEIGHTS)]
    if prose <= 0:
        return digits
    return [x * (1 - prose) for x in digits] + [x * prose for x in digits]


@lru_cache(maxsize=None)
def _compositions(n: int, k: int) -> tuple[tuple[int, ...], ...]:
    out = []
    for cuts in itertools.combinations(range(n + k - 1), k - 1):
        parts, prev = [], -1
        for c in (*cuts, n + k - 1):
            parts.append(c - prev - 1)
            prev = c
        out.append(tuple(parts))
    return tuple(out)


def majority_accuracy(probs: list[float], n: int) -> float:
    """P(a majority vote of n independent draws is answer 0), ties won by each tied answer equally often
    (the first in sample order wins, and by symmetry each tied answer is first equally often)."""
    total = 0.0
    log_fact = [math.lgamma(i + 1) for i in range(n + 1)]
    for c in _compositions(n, len(probs)):
        top = max(c)
        if c[0] != top:
            continue
        ties = sum(1 for x in c if x == top)
        logp = log_fact[n]
        ok = True
        for ci, pi in zip(c, probs):
            if ci:
                if pi <= 0:
                    ok = False
                    break
                logp += ci * math.log(pi) - log_fact[ci]
        if ok:
            total += math.exp(logp) / ties
    return total


def _solve_p(item: ItemProfile, role_fit: bool = True, temperature: float = 0.0) -> float:
    return M.p_solve(item, reasoning=True, role_fit=role_fit, temperature=temperature)


def cot(item: ItemProfile, *, format_ok: bool = True, role_fit: bool = True) -> float:
    return _solve_p(item, role_fit) * (1 - M.prose_rate(format_ok))


def cot_sc(item: ItemProfile, *, temperature: float = 0.8, n: int = 5) -> float:
    if temperature <= 0:
        return cot(item)
    assert M.copy_probability(temperature) == 0, "the formula below assumes independent samples"
    return majority_accuracy(outcome_probs(_solve_p(item, temperature=temperature)), n)


def code(item: ItemProfile) -> float:
    return M.p_code(item, reasoning=True, role_fit=True)


def self_refine(item: ItemProfile) -> float:
    p = _solve_p(item)
    dist = outcome_probs(p)
    rejected = [M.FALSE_REJECT] + [M.CATCH_STEP_BY_STEP] * (len(dist) - 1)
    total = 0.0
    for v1, p1 in enumerate(dist):
        acc = (1 - rejected[v1]) * (v1 == 0)
        for v2, p2 in enumerate(dist):                      # v2: the revision of the rejected v1
            if v2 == v1:
                later = float(v1 == 0)                       # same verdict, same revision: v1 is returned
            else:
                later = (1 - rejected[v2]) * (v2 == 0) + rejected[v2] * p   # v3 is a fresh draw
            acc += rejected[v1] * p2 * later
        total += p1 * acc
    return total


def _plurality_first(values: tuple[int, ...]) -> int:
    counts = {v: values.count(v) for v in values}
    top = max(counts.values())
    return next(v for v in values if counts[v] == top)


def _majority3_right(d0: list[float], d1: list[float], d2: list[float]) -> float:
    """P(majority of three independent answers is 0; a three-way tie goes to the first)."""
    z0, z1, z2 = d0[0], d1[0], d2[0]
    two_or_more = z0 * z1 + z0 * z2 + z1 * z2 - 2 * z0 * z1 * z2
    distinct_rest = sum(d1[a] * d2[b] for a in range(1, len(d1)) for b in range(1, len(d2)) if a != b)
    return two_or_more + z0 * distinct_rest


def debate(item: ItemProfile, *, temperature: float = 0.8) -> float:
    assert M.copy_probability(temperature) == 0, "the formula below assumes independent samples"
    dist = outcome_probs(_solve_p(item, temperature=temperature))
    k = len(dist)
    total = 0.0
    for first in itertools.product(range(k), repeat=3):
        pr = dist[first[0]] * dist[first[1]] * dist[first[2]]
        finals = []
        for i in range(3):
            shown = (first[i], *(first[j] for j in range(3) if j != i))
            top = _plurality_first(shown)
            finals.append([M.ADOPT_MAJORITY * (v == top) + (1 - M.ADOPT_MAJORITY) * dist[v] for v in range(k)])
        total += pr * _majority3_right(*finals)
    return total


def dynamic_role(item: ItemProfile) -> float:
    return M.ROUTER_FIT * cot(item) + (1 - M.ROUTER_FIT) * cot(item, role_fit=False)


ITEM_ACCURACY = {"cot": cot, "cot_sc": cot_sc, "code": code, "self_refine": self_refine, "debate": debate,
                 "dynamic_role": dynamic_role}


@dataclass
class Expectation:
    mean: float
    se: float          # standard error of a measured accuracy over these items: sqrt(sum a(1-a)) / N
    per_item: list[float]


def expected_accuracy(workflow, items: list[ItemProfile]) -> Expectation:
    """`workflow`: a seed workflow name or a function ItemProfile -> probability of a right answer."""
    fn = ITEM_ACCURACY[workflow] if isinstance(workflow, str) else workflow
    acc = [fn(it) for it in items]
    n = len(acc)
    return Expectation(sum(acc) / n, math.sqrt(sum(a * (1 - a) for a in acc)) / n, acc)


def test_profiles(task_name: str, data_dir: str | None = None, seed: int = 0) -> list[ItemProfile]:
    """The model's profiles of a registered task's test items."""
    from w4s_jax.tasks import get
    from .simulated import SimulatedModel
    task = get(task_name, data_dir)
    model = SimulatedModel.for_task(task, seed=seed)
    position = {it.id: i for i, it in enumerate(model.index.items)}
    return [model.index.profile(position[it.id]) for it in task.items("test")]


def table(profiles_by_task: dict[str, list[ItemProfile]]) -> str:
    """The docstring table of model.py: one row per seed workflow, one column per task
    (`table({t: test_profiles(t) for t in ("synth_arith", "synth_units", "gsm_hard")})`)."""
    names = list(profiles_by_task)
    head = "    | workflow     | " + " | ".join(f"{t:>11}" for t in names) + " |"
    rule = "    | ------------ | " + " | ".join("-" * 11 for _ in names) + " |"
    rows = [head, rule]
    for wf in SEED_WORKFLOWS:
        cells = [f"{expected_accuracy(wf, profiles_by_task[t]).mean:11.3f}" for t in names]
        rows.append(f"    | {wf:<12} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
