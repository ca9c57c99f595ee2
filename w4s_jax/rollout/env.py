"""The W4S environment (DESIGN.md): the MDP that drives a meta-agent through workflow-design turns.

State: the chat of prompts.py (task, executor API, techniques, examples with their accuracy, the last
`window` turns with feedback). Action: a reply whose last python block defines `solver`. Transition: the
workflow is self-checked on one item (errors go back to the meta-agent for up to `repairs` repairs), then
run on all the environment's items; accuracy and a few cases become the feedback. Best-of-m: `candidates`
actions per turn, evaluated concurrently; the best by accuracy advances the state; all become records.

Infrastructure failures (executor API down, budget spent, sandbox unavailable) are never shown to the
meta-agent and never scored: they abort the turn with TurnInfraError, and nothing of it is recorded.
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any, Sequence

from . import prompts
from .actions import ActionParseError, extract_workflow
from .errors import InfraError, RequestRejectedError, SandboxUnavailableError, WorkflowCodeError
from .evaluate import EvalResult, evaluate_workflow
from .executor import Executor
from .policies import ActionSample, MetaAgent
from .pool import WorkerPool
from .rewards import RewardConfig, reward


class TurnInfraError(RuntimeError):
    """The turn could not be measured for reasons outside the workflow; nothing of it is recorded."""


@dataclass(frozen=True)
class EnvConfig:
    candidates: int = 5       # m: actions sampled and evaluated per turn
    repairs: int = 3          # repair rounds per candidate after a parse failure or failed self-check
    window: int = 3           # generated turns shown in full in the state
    feedback_cases: int = 3   # cases shown in the feedback (failures first)
    sandbox: str = "bwrap"
    item_timeout_s: float = 120.0
    reward: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self):
        if self.candidates < 1 or self.repairs < 0 or self.window < 0 or self.feedback_cases < 0:
            raise ValueError(f"bad environment settings: {self}")


@dataclass
class TurnEntry:
    """One generated turn of the history: the chosen candidate, as the state shows it."""
    turn: int
    action: str
    code: str | None
    valid_acc: float | None
    status: str
    feedback: str


@dataclass
class Episode:
    episode_id: str
    task: Any
    items: list          # the environment's "validation" items (a train-split sample during collection)
    examples: list[dict]  # [{"name", "code", "valid_acc"}]: seed workflows, evaluated on `items`
    seed: int
    history: list[TurnEntry] = field(default_factory=list)

    @property
    def turn(self) -> int:
        return len(self.history)

    def best_acc(self) -> float:
        accs = [e["valid_acc"] for e in self.examples] + [h.valid_acc for h in self.history]
        return max([a for a in accs if a is not None], default=0.0)

    def previous_acc(self) -> float:
        if self.history:
            return self.history[-1].valid_acc or 0.0
        return (self.examples[0]["valid_acc"] or 0.0) if self.examples else 0.0

    def state(self, window: int) -> list[dict]:
        shown = self.history[len(self.history) - window:] if window else []
        hidden = self.history[: len(self.history) - len(shown)]
        ok_hidden = [h for h in hidden if h.status == "ok" and h.valid_acc is not None]
        best_hidden = max(ok_hidden, key=lambda h: h.valid_acc, default=None)
        first = prompts.task_message(
            self.task.description, self.examples, hidden_turns=len(hidden), n_items=len(self.items),
            best_hidden=None if best_hidden is None else
            {"turn": best_hidden.turn, "code": best_hidden.code, "valid_acc": best_hidden.valid_acc})
        msgs = [{"role": "system", "content": prompts.SYSTEM}, {"role": "user", "content": first}]
        for h in shown:
            msgs += [{"role": "assistant", "content": h.action}, {"role": "user", "content": h.feedback}]
        return msgs


@dataclass
class Candidate:
    index: int
    action: str                  # the meta-agent's final output (after repairs)
    code: str | None
    status: str                  # "ok" | "failed"
    repairs: int
    attempts: list[dict]         # earlier outputs that failed, with the problem sent back
    result: EvalResult | None = None
    error: str | None = None
    logprob: float | None = None  # behaviour log-prob of `action` given the state (None after a repair:
    # a repaired action was sampled in the repair conversation, not from the state)
    info: dict = field(default_factory=dict)   # from the backend: serving model name, policy step
    reward: float = 0.0
    feedback: str = ""

    @property
    def valid_acc(self) -> float | None:
        return None if self.result is None else self.result.accuracy


@dataclass
class TurnOutcome:
    turn: int
    messages: list[dict]
    candidates: list[Candidate]
    chosen: int
    meta_agent_usage: dict = field(default_factory=dict)


def _with_failing_line(error: str, code: str) -> str:
    """Append the source line a 'workflow line N' error points at."""
    import re
    m = re.search(r"workflow line (\d+)", error)
    lines = code.splitlines()
    if m and 1 <= int(m.group(1)) <= len(lines):
        return f"{error}\nFailing line {m.group(1)}: {lines[int(m.group(1)) - 1].strip()}"
    return error


def _infra_problem(res: EvalResult) -> str:
    first = next((r.infra_error for r in res.records if r.infra_error), None)
    return first or res.note or "the executor API failed"


async def _all_or_none(coros: list) -> list:
    """Run concurrently; if one raises, cancel the others (an infra error ends the whole turn) and re-raise."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class Environment:
    """Shared by the episodes of a run: one executor, one meta-agent, one pool of started sandboxes."""

    def __init__(self, cfg: EnvConfig, executor: Executor, meta_agent: MetaAgent, pool: WorkerPool | None):
        self.cfg, self.executor, self.meta_agent, self.pool = cfg, executor, meta_agent, pool

    def budget_spent(self) -> bool:
        budget = self.executor.budget_usd
        return bool(budget) and self.executor.spent_usd >= budget

    async def evaluate(self, code: str, task, items: Sequence) -> EvalResult:
        try:
            return await evaluate_workflow(code, task, items, self.executor, sandbox=self.cfg.sandbox,
                                           item_timeout_s=self.cfg.item_timeout_s, pool=self.pool)
        except SandboxUnavailableError as e:
            raise TurnInfraError(f"the sandbox is unavailable: {e}") from None

    async def evaluate_examples(self, task, items: Sequence, names: Sequence[str]) -> list[dict]:
        seeds = task.seed_workflows()
        missing = [n for n in names if n not in seeds]
        if missing:
            raise ValueError(f"task {task.name}: no seed workflow named {missing}; it has {sorted(seeds)}")
        results = await _all_or_none([self.evaluate(seeds[n], task, items) for n in names])
        out = []
        for n, res in zip(names, results):
            if res.accuracy is None:
                raise TurnInfraError(f"evaluating the example workflow {n!r}: {_infra_problem(res)}")
            out.append({"name": n, "code": seeds[n], "valid_acc": res.accuracy,
                        "cost_usd": res.served_usage.get("cost_usd", 0.0)})
        return out

    async def _self_check(self, code: str, ep: Episode) -> str | None:
        """None if the workflow answers the first item; else the problem, for the meta-agent."""
        try:
            res = await self.evaluate(code, ep.task, ep.items[:1])
        except WorkflowCodeError as e:
            return _with_failing_line(str(e), code)
        if res.accuracy is None:
            raise TurnInfraError(_infra_problem(res))
        rec = res.records[0]
        if rec.error:
            return "Running it on one question failed: " + _with_failing_line(rec.error, code)
        if not (isinstance(rec.answer, dict) and "answer" in rec.answer):
            return (f"`solver` returned {prompts.clip(repr(rec.answer), 300)}; it must return a dict with an "
                    "'answer' key, e.g. {'answer': '42'}.")
        return None

    async def _candidate(self, ep: Episode, state: list[dict], first: ActionSample, index: int) -> Candidate:
        action, logprob, attempts = first.text, first.logprob, []
        info = dict(first.info)
        for round_ in range(self.cfg.repairs + 1):
            try:
                code = extract_workflow(action)
                problem = await self._self_check(code, ep)
            except ActionParseError as e:
                code, problem = None, str(e)
            if problem is None:
                res = await self.evaluate(code, ep.task, ep.items)
                if res.accuracy is None:
                    raise TurnInfraError(_infra_problem(res))
                return Candidate(index, action, code, "ok", round_, attempts, result=res,
                                 logprob=logprob if round_ == 0 else None, info=info)
            attempts.append({"action": action, "problem": problem})
            if round_ == self.cfg.repairs:
                return Candidate(index, action, code, "failed", round_, attempts[:-1], error=problem,
                                 logprob=logprob if round_ == 0 else None, info=info)
            repair = state + [{"role": "assistant", "content": action},
                              {"role": "user", "content": prompts.repair_message(problem)}]
            try:
                (s,) = await self.meta_agent.sample(
                    repair, n=1, scope=f"{ep.episode_id}/t{ep.turn}/c{index}/r{round_ + 1}")
            except (InfraError, RequestRejectedError) as e:
                raise TurnInfraError(f"the meta-agent endpoint failed: {e}") from None
            action, logprob = s.text, s.logprob
        raise AssertionError("unreachable")

    def _feedback(self, ep: Episode, c: Candidate) -> str:
        if c.status != "ok":
            return prompts.feedback_message(valid_acc=None, n_items=len(ep.items), previous_acc=None,
                                            best_acc=None, cases=[], status="failed", error=c.error)
        recs = c.result.records
        wrong = [i for i, r in enumerate(recs) if not r.correct]
        right = [i for i, r in enumerate(recs) if r.correct]
        rng = random.Random(f"{ep.seed}/{ep.turn}/{c.index}")
        k = self.cfg.feedback_cases
        chosen = rng.sample(wrong, min(k, len(wrong)))
        chosen += rng.sample(right, min(k - len(chosen), len(right)))
        cases = [{"question": ep.items[i].question, "answer": recs[i].answer, "expected": ep.items[i].answer,
                  "error": recs[i].error} for i in chosen]
        return prompts.feedback_message(valid_acc=c.valid_acc, n_items=len(ep.items),
                                        previous_acc=ep.previous_acc() if ep.history or ep.examples else None,
                                        best_acc=ep.best_acc(), cases=cases, status="ok")

    async def step(self, ep: Episode) -> TurnOutcome:
        """Sample m actions for the episode's state, evaluate all, reward them and pick the best.
        The episode itself is advanced by `advance` once the turn is safely recorded."""
        state = ep.state(self.cfg.window)
        try:
            samples = await self.meta_agent.sample(state, n=self.cfg.candidates,
                                                   scope=f"{ep.episode_id}/t{ep.turn}")
        except (InfraError, RequestRejectedError) as e:  # rejected: e.g. a state longer than its context
            raise TurnInfraError(f"the meta-agent endpoint failed: {e}") from None
        if len(samples) != self.cfg.candidates:
            raise TurnInfraError(f"the meta-agent returned {len(samples)} samples, asked for {self.cfg.candidates}")
        cands = await _all_or_none([self._candidate(ep, state, s, j) for j, s in enumerate(samples)])
        best, previous = ep.best_acc(), ep.previous_acc()
        for c in cands:
            n = len(ep.items)
            cost = (c.result.served_usage.get("cost_usd", 0.0) / n) if c.result is not None else 0.0
            c.reward = reward(self.cfg.reward, c.valid_acc, best=best, previous=previous, cost_per_item=cost)
            c.feedback = self._feedback(ep, c)
        ok = [c for c in cands if c.status == "ok"]
        chosen = max(ok, key=lambda c: (c.valid_acc, -c.index)).index if ok else 0
        return TurnOutcome(ep.turn, state, cands, chosen)

    @staticmethod
    def advance(ep: Episode, out: TurnOutcome) -> None:
        c = out.candidates[out.chosen]
        ep.history.append(TurnEntry(out.turn, c.action, c.code, c.valid_acc, c.status, c.feedback))
