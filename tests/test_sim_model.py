"""The simulated strong model in this process: synthetic tasks, programs, request reading, determinism,
and the expected-accuracy formulas against brute-force enumeration (no HTTP here; see test_sim_server.py
and test_sim_accuracy.py for the whole stack)."""
from __future__ import annotations

import ast
import hashlib
import itertools
import json
import random
import re
import subprocess
import sys
from collections import Counter

import pytest

import w4s_jax.sim.model as M
from w4s_jax.sim import SimulatedModel, expected as E
from w4s_jax.sim.program import NotStraightLine, Program
from w4s_jax.tasks import get, names
from w4s_jax.tasks.base import Item

pytestmark = pytest.mark.timeout(120)

ARITH_SYSTEM = ('You are a helpful math word problem solver.\nAnswer with a single JSON object whose keys are exactly: '
                '"reasoning", "answer".\nThink through the problem step by step in `reasoning`. The final answer '
                'must be a whole number written with digits only (no units, no words).')


@pytest.fixture(scope="module")
def arith():
    return get("synth_arith")


@pytest.fixture(scope="module")
def model(arith):
    return SimulatedModel.for_task(arith)


def body(user, system=ARITH_SYSTEM, *, temperature=0.0, n=1, json_mode=True, **extra):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    b = {"model": "sim-strong", "messages": msgs, "temperature": temperature, "n": n, **extra}
    if json_mode:
        b["response_format"] = {"type": "json_object"}
    return b


# ------------------------------------------------------------------------------------------ synthetic tasks

def _digest(task) -> str:
    h = hashlib.sha256()
    for split in ("train", "valid", "test"):
        for it in task.items(split):
            h.update(json.dumps([it.id, it.question, it.answer, it.meta["code"]]).encode())
    return h.hexdigest()


def test_synthetic_tasks_are_registered_with_disjoint_seeded_splits(arith):
    assert {"synth_arith", "synth_units"} <= set(names())
    for name, family, max_steps in (("synth_arith", "arith", 8), ("synth_units", "units", 6)):
        task = get(name)
        sizes = {s: len(task.items(s)) for s in ("train", "valid", "test")}
        assert sizes == {"train": 1000, "valid": 128, "test": 500}
        questions = [it.question for s in sizes for it in task.items(s)]
        assert len(set(questions)) == len(questions)
        steps = Counter(it.meta["steps"] for it in task.items("test"))
        assert set(steps) == set(range(1, max_steps + 1)) and min(steps.values()) >= 40   # graded difficulty
        assert all(it.meta["family"] == family for it in task.items("valid"))
        assert set(task.seed_workflows()) == {"cot", "cot_sc", "code", "self_refine", "debate", "dynamic_role"}
    # Another process with another hash seed generates the same items.
    code = ("import hashlib, json; from w4s_jax.tasks import get; t = get('synth_arith'); h = hashlib.sha256()\n"
            "for s in ('train', 'valid', 'test'):\n"
            "    for it in t.items(s):\n"
            "        h.update(json.dumps([it.id, it.question, it.answer, it.meta['code']]).encode())\n"
            "print(h.hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == _digest(arith)


@pytest.mark.parametrize("name", ["synth_arith", "synth_units"])
def test_reference_solutions_compute_the_answers_and_the_scorer_reads_them(name):
    task = get(name)
    for it in task.items("valid") + task.items("test")[:200]:
        ns: dict = {}
        exec(it.meta["code"], ns)              # our own generated code, run by Python itself
        assert ns["solution"]() == it.answer, it.id
        assert Program.parse(it.meta["code"]).run() == it.answer, it.id   # the model's interpreter agrees
        assert Program.parse(it.meta["code"]).n_ops == it.meta["steps"]
        assert task.score(str(it.answer), it) == 1.0 and task.score({"answer": f"{it.answer} in total"}, it) == 1.0
        assert task.score(str(it.answer + 1), it) == 0.0


def test_programs_outside_the_straight_line_subset_are_refused():
    for code in ("def solution():\n    for i in range(3):\n        pass\n    return 1\n",
                 "import os\ndef solution():\n    return os.getpid()\n",
                 "def solution():\n    return open('/etc/passwd').read()\n",
                 "def solution(x):\n    return x\n",
                 "def solution():\n    return 10 ** 10 ** 10\n"):
        with pytest.raises(NotStraightLine):
            Program.parse(code)


def test_plausible_bugs_are_wrong_distinct_and_executable(model, arith):
    for it in arith.items("test")[:60]:
        prof = model.index.profile(model.index.items.index(it))
        values = [prof.answer, *prof.distractors]
        assert len(set(values)) == 4, it.id
        for k, prog in enumerate(prof.programs):
            ns: dict = {}
            exec(prog.source(), ns)
            assert ns["solution"]() == values[k]
            assert arith.score(str(values[k]), it) == float(k == 0)
        kinds = {kind for kind, _ in Program.parse(it.meta["code"]).mutations(random.Random(0))}
        assert kinds <= {"wrong operator", "missing step", "off by one"}


# ------------------------------------------------------------------------------------------ reading requests

def test_reading_a_request_finds_the_item_and_the_technique(model, arith):
    from w4s_jax.sim.request import analyse
    it = arith.items("test")[3]
    c = analyse(body(f"# Your task:\n{it.question}"), model.index)
    assert c.item.id == it.id and c.kind == "solve" and c.reasoning and c.role_fit and c.format_ok
    poet = 'You are a helpful poet.\nAnswer with a single JSON object whose keys are exactly: "answer".'
    bare = analyse(body(it.question, poet), model.index)
    assert bare.item.id == it.id and not (bare.reasoning or bare.role_fit or bare.format_ok)
    # The question inside a longer line, after a worked example of another item: the later question wins.
    other = arith.items("train")[0]
    c = analyse(body(f"Example: {other.question} Answer: {other.answer}\nNow solve this one: {it.question}"),
                model.index)
    assert c.item.id == it.id
    code = analyse(body(it.question, 'You are a helpful programmer.\nAnswer with a single JSON object whose keys are '
                                     'exactly: "code".'), model.index)
    assert code.kind == "code" and not code.role_fit
    text_code = analyse(body(f"Write a Python program for: {it.question}", None, json_mode=False), model.index)
    assert text_code.kind == "code"
    review = analyse(body(f"{it.question}\nProposed answer: 12", 'You are a helpful reviewer.\nAnswer with a single '
                          'JSON object whose keys are exactly: "feedback", "correct".'), model.index)
    assert review.kind == "review" and review.shown == [12]
    debate = analyse(body(f"{it.question}\nAgent 1 answered: 12\nAgent 2 answered: 15"), model.index)
    assert debate.kind == "debate" and debate.shown == [12, 15]
    revise = analyse(body(f"{it.question}\nYour answer: 12\nFeedback: the proposed result 12 is not correct."),
                     model.index)
    assert revise.kind == "revise" and revise.verdict is False
    assert analyse(body("What is the capital of France?"), model.index).item is None


def test_the_questions_own_words_are_not_instructions(model):
    q = ("Nadia walks to school step by step, counting 45 steps per minute for 12 minutes. She writes a python "
         "program that doubles the count. How many steps does the program report?")
    m = SimulatedModel([Item("x/1", q, 1080, {"code": "def solution():\n    s = 45 * 12\n    return s * 2\n"})])
    from w4s_jax.sim.request import analyse
    c = analyse(body(q, "You are a helpful assistant.", json_mode=False), m.index)
    assert c.item.id == "x/1" and c.kind == "solve" and not c.reasoning


# ------------------------------------------------------------------------------------------ replies

def test_replies_are_deterministic_and_temperature_decides_diversity(model, arith):
    items = arith.items("test")[:40]
    fresh = SimulatedModel.for_task(arith)    # a restarted server: same sample sequence per request
    diverse = 0
    for it in items:
        b0 = body(f"# Your task:\n{it.question}", n=5)
        greedy = model.complete(b0)
        assert len(set(greedy)) == 1 and greedy == model.complete(b0)
        hot = body(f"# Your task:\n{it.question}", temperature=0.7, n=5)
        first, again = model.complete(hot), model.complete(hot)    # the repeat draws the next five samples
        assert fresh.complete(hot) == first and fresh.complete(hot) == again
        assert model.complete({**hot, "seed": 7}) == model.complete({**hot, "seed": 7})
        diverse += len({json.loads(r)["answer"] for r in first + again}) > 1
    assert diverse >= 10


def test_usage_grows_with_reasoning_and_samples(model, arith):
    it = arith.items("test")[7]
    plain = 'You are a helpful assistant.\nAnswer with a single JSON object whose keys are exactly: "answer".'
    words = lambda replies: sum(len(r.split()) for r in replies)  # noqa: E731 - what the server bills
    assert words(model.complete(body(it.question, ARITH_SYSTEM))) > 3 * words(model.complete(body(it.question, plain)))
    assert words(model.complete(body(it.question, ARITH_SYSTEM, temperature=1.0, n=5))) > \
        4 * words(model.complete(body(it.question, ARITH_SYSTEM)))
    assert M.__doc__ and "sim-strong" in M.__doc__
    from w4s_jax.rollout.prices import lookup
    assert lookup("sim-strong").output > 0 and lookup("sim").output == 0


def test_without_format_instructions_some_answers_are_words(model, arith):
    loose = ('You are a helpful math word problem solver.\nAnswer with a single JSON object whose keys are exactly: '
             '"reasoning", "answer".\nThink step by step.')
    answers = [json.loads(model.complete(body(it.question, loose))[0])["answer"] for it in arith.items("test")[:100]]
    in_words = [a for a in answers if not re.search(r"\d", str(a))]
    assert 15 <= len(in_words) <= 45 and all(arith.score(a, it) == 0.0 for a, it in zip(in_words, arith.items("test")))


# ------------------------------------------------------------------------------------------ expected accuracy

def _workflow_majority(answers):
    """The seed workflows' vote: Counter.most_common, ties to the first answer seen."""
    return Counter(answers).most_common(1)[0][0]


@pytest.mark.parametrize("p,n", [(0.35, 5), (0.6, 5), (0.9, 3), (0.5, 4)])
def test_majority_formula_equals_enumerating_every_sample_sequence(p, n):
    probs = E.outcome_probs(p, prose=0.3)
    exact = 0.0
    for seq in itertools.product(range(len(probs)), repeat=n):
        pr = 1.0
        for v in seq:
            pr *= probs[v]
        exact += pr * (_workflow_majority(seq) == 0)
    assert E.majority_accuracy(probs, n) == pytest.approx(exact, abs=1e-12)


def _brute_debate(p: float) -> float:
    dist = E.outcome_probs(p)
    total = 0.0
    for first in itertools.product(range(4), repeat=3):
        pr0 = dist[first[0]] * dist[first[1]] * dist[first[2]]
        # each debater: adopt (what its request shows, own answer first) or re-solve to any value
        options = []
        for i in range(3):
            shown = [first[i]] + [first[j] for j in range(3) if j != i]
            opts = [(_workflow_majority(shown), M.ADOPT_MAJORITY)]
            opts += [(v, (1 - M.ADOPT_MAJORITY) * dist[v]) for v in range(4)]
            options.append(opts)
        for (a, pa), (b, pb), (c, pc) in itertools.product(*options):
            total += pr0 * pa * pb * pc * (_workflow_majority([a, b, c]) == 0)
    return total


def _brute_self_refine(p: float) -> float:
    """Enumerate the verdict of every value and the revision of every value (each a fixed function of it)."""
    dist = E.outcome_probs(p)
    rej = [M.FALSE_REJECT] + [M.CATCH_STEP_BY_STEP] * 3
    total = 0.0
    for verdicts in itertools.product([False, True], repeat=4):
        pv = 1.0
        for v, r in enumerate(verdicts):
            pv *= rej[v] if r else 1 - rej[v]
        for revisions in itertools.product(range(4), repeat=4):
            pr = pv
            for v in revisions:
                pr *= dist[v]
            for v1 in range(4):
                answer = v1
                for _ in range(2):                  # the workflow's two rounds
                    if not verdicts[answer]:
                        break
                    answer = revisions[answer]
                total += pr * dist[v1] * (answer == 0)
    return total


@pytest.mark.parametrize("logit", [-1.0, 0.5, 2.0])
def test_debate_and_self_refine_formulas_equal_brute_force(logit):
    class Item_:
        family, steps, load = "arith", 1, 0.0
    # choose the item's difficulty so that the model's p is sigmoid(logit) at the seed's settings
    item = Item_()
    f = M.FAMILIES["arith"]
    item.steps = 1
    item.load = (f.base + M.REASONING_BONUS + M.ROLE_BONUS - logit) / f.load
    p = M.p_solve(item, reasoning=True, role_fit=True)
    assert p == pytest.approx(M.sigmoid(logit))
    assert E.self_refine(item) == pytest.approx(_brute_self_refine(p), abs=1e-12)
    hot = M.p_solve(item, reasoning=True, role_fit=True, temperature=0.8)
    assert E.debate(item) == pytest.approx(_brute_debate(hot), abs=1e-12)


def test_docstring_table_is_what_the_formulas_give(data_dir):
    rows = {}
    for line in M.__doc__.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0] in E.SEED_WORKFLOWS:
            rows[cells[0]] = cells[1:]
        elif cells and cells[0] == "workflow":
            header = cells[1:]
    assert set(rows) == set(E.SEED_WORKFLOWS)
    for col, task_name in enumerate(header):
        if task_name == "gsm_hard" and data_dir is None:
            continue
        profiles = E.test_profiles(task_name, str(data_dir) if data_dir else None)
        for wf in E.SEED_WORKFLOWS:
            expect = E.expected_accuracy(wf, profiles).mean
            assert float(rows[wf][col]) == pytest.approx(expect, abs=5e-4), (wf, task_name)


@pytest.fixture(scope="module")
def data_dir():
    from pathlib import Path
    d = Path(__file__).resolve().parents[2] / "shared" / "data"
    return d if (d / "gsmhardv2.jsonl").exists() else None


def test_seed_workflow_sources_match_what_the_formulas_assume(arith):
    """expected.py encodes each seed's control flow; if workflows.py changes them, this says so."""
    wf = arith.seed_workflows()
    calls = {name: [n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Call)
                    and getattr(n.func, "attr", "") == "call_json_format_llm"] for name, src in wf.items()}

    def kw(call, key):
        return next(ast.literal_eval(k.value) for k in call.keywords if k.arg == key)
    assert [(kw(c, "temperature"), kw(c, "num_of_response")) for c in calls["cot_sc"]] == [(0.8, 5)]
    assert [(kw(c, "temperature"), kw(c, "num_of_response")) for c in calls["debate"]] == [(0.8, 3), (0.8, 1)]
    assert all(kw(c, "temperature") == 0.0 for name in ("cot", "code", "self_refine", "dynamic_role")
               for c in calls[name])
    assert "range(2)" in wf["self_refine"] and "step by step" in wf["self_refine"]
    assert kw(calls["code"][0], "return_dict_keys") == ["reasoning", "code"]
