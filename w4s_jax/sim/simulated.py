"""`SimulatedModel`: the generative model of `model.py` applied to chat requests about a task's items.

    model = SimulatedModel.for_task("synth_arith", seed=0)
    replies = model.complete(body)            # body: a chat-completions request; one reply per choice

Sample indices: at temperature > 0 the k-th identical request (same bytes) served by this process draws
the next `n` samples of that request's stream, so repeating a sampled call gives new samples, and a fresh
server replays the same sequence; a request carrying OpenAI's `seed` field draws samples (seed, 0..n-1)
instead, whatever came before. At temperature 0 there is no index: every sample is the greedy answer.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter

from . import model as M
from . import render
from .items import ItemIndex, same_value
from .request import Call, analyse, role_fits

SIM_MODEL = "sim-strong"
MAX_STREAMS = 1 << 21
MAX_MEMO = 1 << 14      # distinct requests remembered (a few KB each)


def _key(value) -> str:
    return repr(round(value, 9)) if isinstance(value, float) else repr(value)


class SimulatedModel:
    """Answers chat requests about the items of one task (see the module docstring of `model.py`)."""

    models = (SIM_MODEL,)

    def __init__(self, items, *, seed: int = 0, task_name: str = "task"):
        self.seed = seed
        self.task_name = task_name
        self.index = ItemIndex(items, seed)
        self._streams: dict[bytes, int] = {}
        self._memo: dict[bytes, list] = {}

    @classmethod
    def for_task(cls, task, *, data_dir: str | None = None, seed: int = 0) -> "SimulatedModel":
        """A task object, a registered task name, or several comma-separated names (one server for all of
        them: each item keeps its own family); the model knows the items of all their splits."""
        if isinstance(task, str):
            from w4s_jax.tasks import get
            tasks = [get(name.strip(), data_dir) for name in task.split(",") if name.strip()]
        else:
            tasks = [task]
        items = [it for t in tasks for split in ("train", "valid", "test") for it in t.items(split)]
        names = ",".join(getattr(t, "name", "task") for t in tasks)
        if not items:
            raise ValueError(f"simulated model: task {names!r} has no items")
        return cls(items, seed=seed, task_name=names)

    # ----- sample indices
    def _samples(self, body: dict, digest: bytes, n: int) -> list:
        stream = digest.hex()
        seed = body.get("seed")
        if isinstance(seed, int) and not isinstance(seed, bool):
            return [(stream, f"s{seed}.{j}") for j in range(n)]
        start = self._streams.get(digest, 0)
        if len(self._streams) >= MAX_STREAMS:
            self._streams.clear()
        self._streams[digest] = start + n
        return [(stream, start + j) for j in range(n)]

    # ----- replies
    def complete(self, body: dict, raw: bytes | None = None) -> list[str]:
        """One reply per choice of a validated request (see validation.validate_request); `raw`: its bytes."""
        key = raw if raw is not None else json.dumps(body, sort_keys=True).encode()
        # Workflows repeat requests (k samples as k calls, the same step on every run of a workflow): what
        # is read from a request's text, and its greedy reply, are computed once per distinct request.
        memo = self._memo.get(key)
        if memo is None:
            if len(self._memo) >= MAX_MEMO:
                self._memo.clear()
            memo = self._memo[key] = [analyse(body, self.index), hashlib.blake2b(key, digest_size=16).digest(), None]
        call, digest, greedy = memo
        if call.item is None:
            return [render.unknown_reply(call)] * call.n
        if call.temperature <= 0:   # no sample index: every choice is the greedy reply
            if greedy is None:
                greedy = memo[2] = self._reply(call, None)
            return [greedy] * call.n
        return [self._reply(call, s) for s in self._samples(body, digest, call.n)]

    def _reply(self, call: Call, sample) -> str:
        item = call.item
        greedy = sample is None or M.uniforms(self.seed, *sample, "copy")[0] < M.copy_probability(call.temperature)
        temperature = 0.0 if greedy else call.temperature

        def draw(*tag) -> tuple[float, ...]:
            """Four uniforms for one decision: functions of the item (greedy) or of the sample (sampled)."""
            return M.uniforms(self.seed, item.id, *tag) if greedy else M.uniforms(self.seed, *sample, *tag)

        def prose(u: float) -> bool:
            rate = M.prose_rate(call.format_ok)
            return rate > 0 and item.kind in ("number", "choice") and u < rate

        def solve(*tag):
            """(value, outcome, in words) of an answer worked out afresh with this request's technique."""
            u = draw("solve", *tag)
            p = M.p_solve(item, reasoning=call.reasoning, role_fit=call.role_fit, temperature=temperature)
            outcome = 0 if u[0] < p else M.distractor(u[1])
            return item.value(outcome), outcome, prose(u[2])

        def rejects(candidate) -> bool:
            rate = M.FALSE_REJECT if item.outcome_of(candidate) == 0 else M.catch_rate(call.reasoning)
            return M.uniforms(self.seed, item.id, "review", _key(candidate))[0] < rate

        kind = call.kind
        if kind == "code":
            u = draw("code")
            p = M.p_code(item, reasoning=call.reasoning, role_fit=call.role_fit)
            outcome = 0 if u[0] < p else M.distractor(u[1])
            return render.code_reply(call, outcome, *solve())
        if kind == "review":
            if not call.shown:
                return render.review_reply(call, None, None)
            candidate = call.shown[-1]
            return render.review_reply(call, candidate, rejects(candidate))
        if kind == "route":
            return render.route_reply(call, self._route(call))
        if kind == "revise":
            candidate = call.shown[-1]
            accepted = call.verdict if call.verdict is not None else not rejects(candidate)
            if accepted:
                return render.answer_reply(call, candidate, item.outcome_of(candidate),
                                           prose(draw("keep", _key(candidate))[2]))
            return render.answer_reply(call, *solve("revise", _key(candidate)))
        if kind == "debate":
            shown_key = ",".join(_key(v) for v in call.shown)
            u = draw("adopt", shown_key)
            if u[0] < M.ADOPT_MAJORITY:
                top = _plurality(call.shown)
                return render.answer_reply(call, top, item.outcome_of(top), prose(u[2]))
            return render.answer_reply(call, *solve("debate", shown_key))
        return render.answer_reply(call, *solve())

    def _route(self, call: Call) -> str:
        item = call.item
        experts = call.experts
        fitting = [e for e in experts if role_fits(e, item.family)]
        u = M.uniforms(self.seed, item.id, "route")
        if fitting and u[0] < M.ROUTER_FIT:
            return fitting[0]
        others = [e for e in experts if not fitting or e != fitting[0]]
        if not others:
            return fitting[0] if fitting else f"{item.family} expert"
        return others[min(len(others) - 1, int(u[1] * len(others)))]


def _plurality(values: list):
    """The most frequent value; ties go to the one shown first."""
    counts: Counter = Counter()
    first: dict[str, int] = {}
    rep: dict[str, object] = {}
    for i, v in enumerate(values):
        k = next((k for k, r in rep.items() if same_value(r, v)), None)
        if k is None:
            k = _key(v)
            rep[k], first[k] = v, i
        counts[k] += 1
    best = max(counts, key=lambda k: (counts[k], -first[k]))
    return rep[best]
