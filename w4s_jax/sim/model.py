"""The simulated strong executor: a small generative model of how a strong chat LLM answers a workflow.

Every reply is a deterministic function of (request, sample index, seed): all chance comes from
`uniforms(...)`, a hash of named parts. Per item the model knows the reference answer, the difficulty
d (arithmetic operations of the solution), the arithmetic load h in [0, 1] (digits carried: (max
significant digits - 2) / 4, clipped) and three distractors D1, D2, D3. When the item has a straight-line
reference solution (the synthetic tasks' `meta["code"]`) the distractors are the results of plausible bugs
in it (an operator swapped, a constant off by one, a step dropped), so wrong answers agree with each other
as real errors do; otherwise (e.g. GSM-Hard items, which come without one) they are perturbations of the
answer (+-1, x2, x10, ...) and d is the count of numbers in the question minus one.

Solving (a request for an answer). The answer is right with probability

    p = sigmoid(a_f - b_f (d - 1) - g_f h + 1.0 [reasoning asked] + 0.5 [fitting expert role]
                - 1.0 max(0, T - 0.7))

(family parameters in `FAMILIES`: synthetic arithmetic a=1.5, b=0.40, g=1.5; unit conversions 1.6, 0.35,
0.8; other numeric benchmarks 0.8, 0.35, 1.5; reasoning asked: a `reasoning`/`thinking`-like key or a
"step by step"-like instruction; fitting role: "You are a <role>" naming the task's domain, e.g. math for
arithmetic, units/conversion/engineer for conversions), else it is distractor k with probability w_k,
w = (0.55, 0.30, 0.15). Without a precise instruction about the answer's form (digits only, a number, a
letter...), the answer is written in words ("forty-two") with probability 0.3, which no scorer reads.
A request about no known item gets a reply saying so.

Temperature. At T = 0 every sample is the greedy answer: right iff u_item < p, with one uniform u_item per
item (so better technique makes a superset of items right), distractor and wording from two more per-item
uniforms. At T > 0 each sample repeats the greedy answer with probability max(0, 1 - T/0.7) and is an
independent draw otherwise; at T >= 0.7 samples are independent. Hence a majority of 5 gains nothing at
T = 0, and at T >= 0.7 its accuracy is the multinomial formula: sum over the count vectors c of
(c_0, c_1, c_2, c_3) of Multinomial(c; 5, p, q w_1, q w_2, q w_3) [c_0 is a maximum] / #maxima
(q = 1 - p; a tie is won by the first answer in sample order, each tied answer equally likely).

Code (a `code`/`program` key, or a text request asking for Python). The reply is a `solution()` that
returns the right answer with probability

    p_code = sigmoid(c_f - e_f (d - 1) + 0.5 h + 0.3 [reasoning asked] + 0.5 [fitting role])

(c, e: arithmetic 1.6, 0.15; conversions 1.2, 0.20; other numeric 1.5, 0.15; the load helps: items heavy
in arithmetic are plain computation, which the program does exactly), else the program of distractor k (weights w): a real
wrong operator, off-by-one constant or missing step, which `agent.execute_code` runs.

Verification (a request shown a candidate answer and asked for a verdict: `correct`/`verdict`-like
keys). A wrong candidate is caught with probability 0.5 (0.7 when the check is asked step by step); a
right one is rejected with probability 0.1. The verdict is a function of (item, candidate). A revision
shown a rejecting review re-solves the item with a fresh draw (a function of item and rejected
candidate); shown an accepting review it keeps the candidate; shown only a candidate it checks it as a
verifier would and keeps it or re-solves.

Debate (a request shown two or more answers). With probability 0.6 the reply adopts the most frequent
shown answer (ties: the first shown), else it re-solves independently.

Routing (a request with an `expert`/`role`-like key and a list of experts). The expert fitting the task
is chosen with probability 0.85, else one of the others uniformly.

Usage. Replies are real text: the reasoning spells out one step of the solution per operation, code is
the whole program, so completion tokens grow with requested reasoning, difficulty and `n`; the model
`sim-strong` is priced like GPT-4o-mini (w4s_jax/rollout/prices.py), so workflows cost real money to a
cost-aware reward.

Expected accuracy of the seed workflows (w4s_jax/tasks/workflows.py) on the 500-item test splits, model
seed 0, as computed by `w4s_jax.sim.expected` from the formulas above (tests check the table against the
computation, and measurements through the whole stack against both; gsm_hard from
../shared/data/gsmhardv2.jsonl):

    | workflow     | synth_arith | synth_units |    gsm_hard |
    | ------------ | ----------- | ----------- | ----------- |
    | cot          |       0.701 |       0.799 |       0.625 |
    | cot_sc       |       0.811 |       0.937 |       0.749 |
    | code         |       0.885 |       0.872 |       0.917 |
    | self_refine  |       0.823 |       0.905 |       0.775 |
    | debate       |       0.779 |       0.902 |       0.706 |
    | dynamic_role |       0.688 |       0.787 |       0.609 |
"""
from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass

from .items import ItemProfile


@dataclass(frozen=True)
class Family:
    """Logit parameters of one family of items."""
    base: float        # a_f: a one-operation item, no technique, no load
    per_step: float    # b_f: per extra operation
    load: float        # g_f: at full arithmetic load
    code_base: float   # c_f
    code_per_step: float  # e_f


FAMILIES = {
    "arith": Family(base=1.5, per_step=0.40, load=1.5, code_base=1.6, code_per_step=0.15),
    "units": Family(base=1.6, per_step=0.35, load=0.8, code_base=1.2, code_per_step=0.20),
    "math": Family(base=0.8, per_step=0.35, load=1.5, code_base=1.5, code_per_step=0.15),
    "choice": Family(base=0.8, per_step=0.20, load=0.0, code_base=0.0, code_per_step=0.20),
    "text": Family(base=0.8, per_step=0.20, load=0.0, code_base=0.0, code_per_step=0.20),
}
REASONING_BONUS = 1.0
ROLE_BONUS = 0.5
CODE_REASONING_BONUS = 0.3
CODE_LOAD_BONUS = 0.5        # big-number arithmetic is plain computation: easy to write down as code
HOT_PENALTY = 1.0            # per unit of temperature above INDEPENDENT_AT
INDEPENDENT_AT = 0.7         # samples at this temperature or above are independent
DISTRACTOR_WEIGHTS = (0.55, 0.30, 0.15)
PROSE_WITHOUT_FORMAT = 0.3
CATCH = 0.5
CATCH_STEP_BY_STEP = 0.7
FALSE_REJECT = 0.1
ADOPT_MAJORITY = 0.6
ROUTER_FIT = 0.85


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


_FOUR_WORDS = struct.Struct(">4Q")
_TO_UNIT = 1.0 / 18446744073709551616.0


def uniforms(*parts) -> tuple[float, float, float, float]:
    """Four independent uniform numbers in [0, 1) that are a fixed function of the parts."""
    a, b, c, d = _FOUR_WORDS.unpack(hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=32).digest())
    return a * _TO_UNIT, b * _TO_UNIT, c * _TO_UNIT, d * _TO_UNIT


def p_solve(item: ItemProfile, *, reasoning: bool, role_fit: bool, temperature: float = 0.0) -> float:
    f = FAMILIES.get(item.family, FAMILIES["math"])
    x = (f.base - f.per_step * (item.steps - 1) - f.load * item.load + REASONING_BONUS * reasoning
         + ROLE_BONUS * role_fit - HOT_PENALTY * max(0.0, temperature - INDEPENDENT_AT))
    return sigmoid(x)


def p_code(item: ItemProfile, *, reasoning: bool, role_fit: bool) -> float:
    f = FAMILIES.get(item.family, FAMILIES["math"])
    return sigmoid(f.code_base - f.code_per_step * (item.steps - 1) + CODE_LOAD_BONUS * item.load
                   + CODE_REASONING_BONUS * reasoning + ROLE_BONUS * role_fit)


def copy_probability(temperature: float) -> float:
    """Probability that a sample at this temperature repeats the greedy answer."""
    return 1.0 if temperature <= 0 else max(0.0, 1.0 - temperature / INDEPENDENT_AT)


def prose_rate(format_ok: bool) -> float:
    return 0.0 if format_ok else PROSE_WITHOUT_FORMAT


def catch_rate(step_by_step: bool) -> float:
    return CATCH_STEP_BY_STEP if step_by_step else CATCH


def distractor(u: float) -> int:
    """Distractor 1..3 drawn with DISTRACTOR_WEIGHTS from a uniform u."""
    acc = 0.0
    for k, w in enumerate(DISTRACTOR_WEIGHTS, 1):
        acc += w
        if u < acc:
            return k
    return len(DISTRACTOR_WEIGHTS)
