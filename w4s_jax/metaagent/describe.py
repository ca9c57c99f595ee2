"""Reading a workflow's technique and knobs back from its source, for tallies of what a meta-agent writes.

`describe(text)` takes workflow code or a whole meta-agent reply (its python block is used). It parses the
source (never runs it) and reads its requests to the executor: direct `agent.call_json_format_llm` /
`agent.call_llm` calls, and calls of a helper that wraps one (the `ask` of render.py: its keyword defaults
apply unless a call overrides them). From those it reads the roles (reviewer, router, planner), the keys,
the literal temperature / samples / instructions, the loops around them and the strings the code sends.
It works on any source, the model's own outputs included: what cannot be read is None, code that does not
parse gets `parsed=False` and a technique guessed from its text, and nothing raises.
"""
from __future__ import annotations

import ast
import re

from .render import GENERIC_ROLE, LOOSE_FORMAT, PLANNER_ROLE, REASONING_TEXT, REVIEWER_ROLE, ROUTER_ROLE
from .space import SHARED_KNOBS, TECHNIQUE_KNOBS

_CALLS = ("call_json_format_llm", "call_llm")
_HELPERS = (REVIEWER_ROLE, ROUTER_ROLE, PLANNER_ROLE)
_NO_VALUE = object()
_DEBATE_MARKS = ("agent answered", "other answers", "other solutions", "another solver", "debate")
# the helper's parameter -> the agent call's keyword it feeds
_PARAMS = {"n": "num_of_response", "keys": "return_dict_keys", "role": "agent_role"}


def _source(text: str) -> str:
    if "```" in text:
        from w4s_jax.rollout.actions import ActionParseError, extract_workflow
        try:
            return extract_workflow(text)
        except ActionParseError:
            return text
    return text


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO_VALUE


class _Request:
    """One request to the executor as the source states it: keyword values (literals only) and the node."""

    def __init__(self, node: ast.Call, kw: dict):
        self.node, self.kw = node, kw

    def get(self, key, default=None):
        v = self.kw.get(key, default)
        return default if v is _NO_VALUE else v

    @property
    def role(self):
        return self.get("agent_role")

    @property
    def keys(self) -> list[str]:
        keys = self.get("return_dict_keys", [])
        return [str(k) for k in keys] if isinstance(keys, (list, tuple)) else []


def _keywords(node: ast.Call, names: dict) -> dict:
    out = {}
    for k in node.keywords:
        if k.arg is not None:
            v = _literal(k.value)
            if v is _NO_VALUE and isinstance(k.value, ast.Name):
                v = names.get(k.value.id, _NO_VALUE)
            out[k.arg] = v
    return out


def _guess_from_text(code: str) -> str:
    low = code.lower()
    for technique, marks in (("code", ("execute_code",)), ("decomposition", ("subquestion", "sub-question")),
                             ("dynamic_role", ("experts", ROUTER_ROLE)), ("self_refine", (REVIEWER_ROLE, '"correct"')),
                             ("debate", _DEBATE_MARKS), ("self_consistency", ("counter(",)), ("cot", _CALLS)):
        if any(m in low for m in marks):
            return technique
    return "other"


def _empty(technique: str, parsed: bool) -> dict:
    out = {"technique": technique, "parsed": parsed, "calls": None}
    out.update({k: None for k in SHARED_KNOBS})
    out.update({k: None for k in TECHNIQUE_KNOBS.get(technique, {})})
    return out


def _range_loops(tree) -> list[tuple[ast.AST, int | None]]:
    """(loop, K) for every `for ... in range(K)` statement or comprehension (K None when not a literal)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.For):
            gens = [node.iter]
        elif isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            gens = [g.iter for g in node.generators]
        else:
            continue
        for it in gens:
            if isinstance(it, ast.Call) and getattr(it.func, "id", "") == "range" and len(it.args) == 1:
                k = _literal(it.args[0])
                out.append((node, k if isinstance(k, int) and not isinstance(k, bool) else None))
    return out


def _inside(node: ast.AST, tree: ast.AST) -> bool:
    return any(x is node for x in ast.walk(tree))


def _loop_count(loops, target: ast.AST) -> int | None:
    """K of the innermost range loop holding `target`; 1 if none does."""
    holding = [(loop, k) for loop, k in loops if _inside(target, loop)]
    if not holding:
        return 1
    return min(holding, key=lambda lk: sum(1 for _ in ast.walk(lk[0])))[1]


def _names(tree) -> dict[str, object]:
    """Names assigned a literal anywhere (instructions = "...", experts = [...])."""
    out: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            v = _literal(node.value)
            if v is not _NO_VALUE:
                out.setdefault(node.targets[0].id, v)
    return out


def _requests(module: ast.Module, solver: ast.FunctionDef, names: dict) -> tuple[list[_Request], dict]:
    """Every request `solver` makes, in source order, and the helper's defaults ({} without a helper). A
    helper is a function (nested in `solver` or beside it) that makes the agent call; a request through it
    is one of its call sites in `solver`: the helper's agent call with the site's arguments bound."""
    agent_calls = [n for n in ast.walk(module) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                   and n.func.attr in _CALLS]
    helper = next((n for n in ast.walk(module) if isinstance(n, ast.FunctionDef) and n is not solver
                   and any(_inside(c, n) for c in agent_calls)), None)
    if helper is None:
        return [_Request(c, _keywords(c, names)) for c in agent_calls if _inside(c, solver)], {}
    inner = next(c for c in agent_calls if _inside(c, helper))
    params = [a.arg for a in helper.args.args]
    defaults = {a.arg: _literal(v) for a, v in zip(helper.args.args[len(params) - len(helper.args.defaults):],
                                                   helper.args.defaults)}
    # which agent keyword each helper parameter feeds (`temperature=temperature`, `return_dict_keys=list(keys)`)
    feeds = {}
    for k in inner.keywords:
        used = [n.id for n in ast.walk(k.value) if isinstance(n, ast.Name) and n.id in params]
        if k.arg is not None and used:
            feeds[used[0]] = k.arg
    fixed = {k: v for k, v in _keywords(inner, names).items() if v is not _NO_VALUE}
    out = []
    for site in ast.walk(solver):
        if not (isinstance(site, ast.Call) and isinstance(site.func, ast.Name) and site.func.id == helper.name):
            continue
        bound = dict(defaults)
        for i, a in enumerate(site.args):
            if i < len(params):
                bound[params[i]] = _literal(a)
        for k in site.keywords:
            if k.arg is not None:
                v = _literal(k.value)
                bound[k.arg] = names.get(k.value.id, _NO_VALUE) if v is _NO_VALUE and isinstance(k.value, ast.Name) else v
        kw = dict(fixed)
        for p, v in bound.items():
            kw[feeds.get(p, _PARAMS.get(p, p))] = v
        out.append(_Request(site, kw))
    out.sort(key=lambda r: (r.node.lineno, r.node.col_offset))
    return out, {feeds.get(p, _PARAMS.get(p, p)): v for p, v in defaults.items()}


def _technique(requests: list[_Request], text_low: str, has_exec: bool) -> str:
    roles = {r.role for r in requests}
    keys = {k for r in requests for k in r.keys}
    if has_exec:
        return "code"
    if PLANNER_ROLE in roles or "subquestions" in keys:
        return "decomposition"
    if ROUTER_ROLE in roles or "expert" in keys:
        return "dynamic_role"
    if REVIEWER_ROLE in roles or "correct" in keys:
        return "self_refine"
    if any(m in text_low for m in _DEBATE_MARKS):
        return "debate"
    if "counter(" in text_low or "most_common" in text_low:
        return "self_consistency"
    return "cot" if requests else "other"


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def describe(text: str) -> dict:
    """{"technique", "parsed", "calls" (requests in the source), and every knob of space.py the technique
    has (None when it cannot be read)}."""
    if not isinstance(text, str):
        return _empty("other", False)
    code = _source(text)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return _empty(_guess_from_text(code), False)
    solver = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "solver"), None)
    if solver is None:
        return _empty(_guess_from_text(code), False)
    names = _names(solver)
    requests, defaults = _requests(tree, solver, names)
    execs = [n for n in ast.walk(solver) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "execute_code"]
    technique = _technique(requests, code.lower(), bool(execs))
    out = _empty(technique, True)
    out["calls"] = len(requests)
    main = [r for r in requests if r.role not in _HELPERS]
    if not main:
        return out
    # shared knobs: from the code request (code) or the first answering request
    first = next((r for r in main if "code" in r.keys), main[0]) if technique == "code" else main[0]
    role = defaults.get("agent_role")
    if not isinstance(role, str):
        role = next((r.role for r in main if isinstance(r.role, str)), None)
    if not isinstance(role, str) and isinstance(names.get("experts"), list) and names["experts"]:
        role = names["experts"][0]
    if isinstance(role, str):
        out["role"] = "generic" if role == GENERIC_ROLE else "expert"
    t = first.get("temperature")
    out["temperature"] = float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else None
    out["reasoning"] = "reasoning" in first.keys
    instructions = first.get("instructions")
    if isinstance(instructions, str):
        rest = instructions.replace(REASONING_TEXT, "").strip()
        out["answer_format"] = "loose" if LOOSE_FORMAT in instructions else ("precise" if rest else None)
    loops = _range_loops(solver)
    if technique == "self_consistency":
        n = _int(first.get("num_of_response", 1))
        if n and n > 1:
            out["samples"], out["batching"] = n, "n"
        else:
            k = _loop_count(loops, first.node)
            out["samples"], out["batching"] = k, ("loop" if k and k > 1 else None)
    elif technique == "self_refine":
        review = next((r for r in requests if r.role == REVIEWER_ROLE or "correct" in r.keys), None)
        if review is not None:
            out["rounds"] = _loop_count(loops, review.node)
            ask = review.get("instructions")
            if isinstance(ask, str):
                out["review"] = "step_by_step" if re.search(r"step[- ]by[- ]step", ask, re.I) else "plain"
    elif technique == "debate":
        out["debaters"] = _int(first.get("num_of_response"))
        if len(main) > 1:
            outer = [k for loop, k in loops if isinstance(loop, ast.For) and _inside(main[1].node, loop)]
            out["rounds"] = outer[-1] if outer else 1
    elif technique == "dynamic_role":
        experts = names.get("experts")
        out["experts"] = len(experts) if isinstance(experts, list) else None
    elif technique == "code":
        out["attempts"] = _loop_count(loops, execs[0])
        out["fallback"] = "cot" if any("code" not in r.keys for r in main) else "none"
    elif technique == "decomposition":
        plan = next((r for r in requests if r.role == PLANNER_ROLE or "subquestions" in r.keys), None)
        ask = plan.get("instructions") if plan is not None else None
        m = re.search(r"at most (\d+)", ask) if isinstance(ask, str) else None
        out["subquestions"] = int(m.group(1)) if m else None
    return out
