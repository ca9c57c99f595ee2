"""Reading a workflow's technique and knobs back from its source, for tallies of what a meta-agent writes.

`describe(text)` takes workflow code or a whole meta-agent reply (its python block is used). It parses the
source (never runs it) and reads the agent calls: their literal keyword arguments, the loops around them,
the helper roles (reviewer, router, planner) and the strings they send. It works on any source, the
model's own outputs included: what cannot be read is None, code that does not parse gets
`parsed=False` and a technique guessed from its text, and nothing raises.
"""
from __future__ import annotations

import ast
import re

from .render import GENERIC_ROLE, LOOSE_FORMAT, PLANNER_ROLE, REASONING_TEXT, REVIEWER_ROLE, ROUTER_ROLE
from .space import SHARED_KNOBS, TECHNIQUE_KNOBS

_CALLS = ("call_json_format_llm", "call_llm")
_NO_VALUE = object()
_DEBATE_MARKS = ("agent answered", "other answers", "other solutions", "another solver", "debate")


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


class _Call:
    def __init__(self, node: ast.Call, strings: dict[str, object]):
        self.node = node
        self.kw: dict[str, object] = {}
        for k in node.keywords:
            if k.arg is None:
                continue
            value = _literal(k.value)
            if value is _NO_VALUE and isinstance(k.value, ast.Name):
                value = strings.get(k.value.id, _NO_VALUE)
            self.kw[k.arg] = value

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


def _guess_from_text(code: str) -> str:
    low = code.lower()
    for technique, marks in (("code", ("execute_code",)), ("decomposition", ("subquestion", "sub-question")),
                             ("dynamic_role", ("experts", ROUTER_ROLE)), ("self_refine", (REVIEWER_ROLE, '"correct"')),
                             ("debate", _DEBATE_MARKS), ("self_consistency", ("counter(",)),
                             ("cot", _CALLS)):
        if any(m in low for m in marks):
            return technique
    return "other"


def _empty(technique: str, parsed: bool) -> dict:
    out = {"technique": technique, "parsed": parsed, "calls": None}
    for k in SHARED_KNOBS:
        out[k] = None
    for k in TECHNIQUE_KNOBS.get(technique, {}):
        out[k] = None
    return out


def _range_loops(tree) -> list[tuple[ast.AST, int | None]]:
    """(loop, K) for every `for ... in range(K)` statement or comprehension (K None when not a literal)."""
    out = []
    for node in ast.walk(tree):
        gens = []
        if isinstance(node, ast.For):
            gens = [(node, node.iter)]
        elif isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            gens = [(node, g.iter) for g in node.generators]
        for loop, it in gens:
            if isinstance(it, ast.Call) and getattr(it.func, "id", "") == "range" and len(it.args) == 1:
                k = _literal(it.args[0])
                out.append((loop, k if isinstance(k, int) else None))
    return out


def _loop_count(loops, target: ast.AST) -> int | None:
    """K of the innermost range loop holding `target`; 1 if none does."""
    holding = [(loop, k) for loop, k in loops if any(n is target for n in ast.walk(loop))]
    if not holding:
        return 1
    inner = min(holding, key=lambda lk: sum(1 for _ in ast.walk(lk[0])))
    return inner[1]


def _strings(tree) -> dict[str, object]:
    """Names assigned a literal anywhere (instructions = "...", experts = [...])."""
    out: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            v = _literal(node.value)
            if v is not _NO_VALUE:
                out.setdefault(node.targets[0].id, v)
    return out


def _technique(calls: list[_Call], text_low: str, has_exec: bool) -> str:
    roles = {c.role for c in calls}
    keys = {k for c in calls for k in c.keys}
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
    return "cot" if calls else "other"


def _helper(solver: ast.FunctionDef) -> tuple[ast.FunctionDef | None, dict]:
    """A nested function that wraps the answering call (`def ask(content, n=1, role=...)`), with its
    keyword defaults."""
    for node in ast.walk(solver):
        if isinstance(node, ast.FunctionDef) and node is not solver and any(
                isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr in _CALLS
                for c in ast.walk(node)):
            args = node.args.args[len(node.args.args) - len(node.args.defaults):]
            return node, {a.arg: _literal(d) for a, d in zip(args, node.args.defaults)}
    return None, {}


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def describe(text: str) -> dict:
    """{"technique", "parsed", "calls" (agent calls in the source), and every knob of space.py the
    technique has (None when it cannot be read)}."""
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
    strings = _strings(solver)
    calls = [_Call(n, strings) for n in ast.walk(solver) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr in _CALLS]
    execs = [n for n in ast.walk(solver) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "execute_code"]
    helper, defaults = _helper(solver)
    # calls of the helper (`ask(...)`): where the per-call knobs (n) are
    uses = [n for n in ast.walk(solver) if helper is not None and isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name) and n.func.id == helper.name]
    technique = _technique(calls, code.lower(), bool(execs))
    out = _empty(technique, True)
    out["calls"] = len(calls)
    main = [c for c in calls if c.role not in (REVIEWER_ROLE, ROUTER_ROLE, PLANNER_ROLE)]
    if not main:
        return out
    # the shared knobs come from the answering call: the code request for code, else the helper's call
    if technique == "code":
        first = next((c for c in main if "code" in c.keys), main[0])
    else:
        first = next((c for c in main if helper is not None and any(c.node is x for x in ast.walk(helper))), main[0])
    role = first.role
    if not isinstance(role, str):
        role = defaults.get("role")
    if not isinstance(role, str) and isinstance(strings.get("experts"), list) and strings["experts"]:
        role = strings["experts"][0]  # dynamic role written without a helper: the fallback expert
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

    def n_of(call_node: ast.Call | None, fallback=None):
        if call_node is None:
            return fallback
        for kw in call_node.keywords:
            if kw.arg in ("n", "num_of_response"):
                return _int(_literal(kw.value))
        return _int(defaults.get("n")) if call_node in uses else fallback

    answering = uses[0] if uses else first.node
    if technique == "self_consistency":
        n = n_of(answering, _int(first.get("num_of_response", 1)))
        if n and n > 1:
            out["samples"], out["batching"] = n, "n"
        else:
            k = _loop_count(loops, answering)
            out["samples"], out["batching"] = k, ("loop" if k and k > 1 else None)
    elif technique == "self_refine":
        review = next((c for c in calls if c.role == REVIEWER_ROLE or "correct" in c.keys), None)
        if review is not None:
            out["rounds"] = _loop_count(loops, review.node)
            ask = review.get("instructions")
            if isinstance(ask, str):
                out["review"] = "step_by_step" if re.search(r"step[- ]by[- ]step", ask, re.I) else "plain"
    elif technique == "debate":
        sites = uses or [c.node for c in main]
        out["debaters"] = n_of(sites[0], _int(first.get("num_of_response")))
        if len(sites) > 1:
            outer = [k for loop, k in loops if isinstance(loop, ast.For) and any(x is sites[1] for x in ast.walk(loop))]
            out["rounds"] = outer[-1] if outer else 1
    elif technique == "dynamic_role":
        experts = strings.get("experts")
        out["experts"] = len(experts) if isinstance(experts, list) else None
    elif technique == "code":
        out["attempts"] = _loop_count(loops, execs[0])
        after = [c for c in main if "answer" in c.keys and (helper is None or not any(c.node is x for x in ast.walk(helper)))]
        out["fallback"] = "cot" if (uses or after) else "none"
    elif technique == "decomposition":
        plan = next((c for c in calls if c.role == PLANNER_ROLE or "subquestions" in c.keys), None)
        ask = plan.get("instructions") if plan is not None else None
        m = re.search(r"at most (\d+)", ask) if isinstance(ask, str) else None
        out["subquestions"] = int(m.group(1)) if m else None
    return out
