"""Designs -> workflow source and meta-agent replies (analysis + one python block).

The generated code is plain, self-contained `solver(agent, task)` source in the executor API of DESIGN.md:
standard library only, every knob visible as a literal (so `describe` can read it back), every path
returning {"answer": ...}. Shared pieces (the instructions line, the answering call) are written the same
way in every technique, so a small model learns them once.
"""
from __future__ import annotations

import random

from .space import Design, TaskStyle

REASONING_TEXT = "Think step by step in `reasoning` before you answer. "
LOOSE_FORMAT = "Give the final answer in `answer`."
GENERIC_ROLE = "assistant"
REVIEWER_ROLE = "meticulous reviewer"
ROUTER_ROLE = "task router"
PLANNER_ROLE = "planner"
HELPER_ROLES = (REVIEWER_ROLE, ROUTER_ROLE, PLANNER_ROLE)
# Other experts the router may choose from (none names a particular domain).
OTHER_EXPERTS = ("careful problem solver", "critical thinker", "generalist assistant", "puzzle enthusiast")
REVIEW_STEP_BY_STEP = "Check the proposed answer step by step."
REVIEW_PLAIN = "Check the proposed answer."
REVIEW_VERDICT = ' Set `correct` to "True" if it is right, else "False".'
CODE_TEXT = "Write Python code in `code` defining `solution()`, which returns the final answer. "
CODE_PLAN = "Explain your plan in `reasoning` first. "


def _q(s: str) -> str:
    """A Python string literal (double quotes)."""
    r = repr(s)
    if r.startswith("'") and '"' not in s:
        r = '"' + r[1:-1].replace("\\'", "'") + '"'
    return r


def _instructions(d: Design, style: TaskStyle) -> str:
    fmt = style.answer_format if d["answer_format"] == "precise" else LOOSE_FORMAT
    return (REASONING_TEXT if d["reasoning"] else "") + fmt


def _keys(d: Design, last: str = "answer") -> str:
    return f'["reasoning", "{last}"]' if d["reasoning"] else f'["{last}"]'


def _role(d: Design, style: TaskStyle) -> str:
    return style.role if d["role"] == "expert" else GENERIC_ROLE


def _call(content: str, *, temperature, n="1", role: str, keys: str, instructions: str, indent: str,
          target: str, first: bool = True) -> list[str]:
    """`target = agent.call_json_format_llm(...)` as source lines (`content`: the user message expression)."""
    inner = indent + "    "
    return [f"{indent}{target} = agent.call_json_format_llm(",
            f'{inner}messages=[{{"role": "user", "content": {content}}}],',
            f"{inner}temperature={temperature},",
            f"{inner}num_of_response={n},",
            f"{inner}agent_role={role},",
            f"{inner}return_dict_keys={keys},",
            f"{inner}instructions={instructions},",
            f"{indent})[0]" if first else f"{indent})"]


def _ask(d: Design, s: TaskStyle) -> list[str]:
    """The helper every technique answers through: the shared knobs in one place."""
    call = _call("content", temperature=d["temperature"], n="n", role="role", keys=_keys(d),
                 instructions=_q(_instructions(d, s)), indent="        ", target="", first=False)
    return [f"    def ask(content, n=1, role={_q(_role(d, s))}):",
            "        return agent.call_json_format_llm("] + call[1:]


TASK_MSG = 'f"# Task:\\n{task}"'
ANSWER = 'str(reply["answer"]).strip()'
VOTING = ("self_consistency", "debate")
VOTE = '    return {"answer": Counter(answers).most_common(1)[0][0]}'


def _cot(d: Design, s: TaskStyle) -> list[str]:
    return [f"    reply = ask({TASK_MSG})[0]", f'    return {{"answer": {ANSWER}}}']


def _self_consistency(d: Design, s: TaskStyle) -> list[str]:
    k = d["samples"]
    if d["batching"] == "n":
        return [f'    answers = [str(r["answer"]).strip() for r in ask({TASK_MSG}, n={k})]', VOTE]
    return [f'    answers = [str(ask({TASK_MSG})[0]["answer"]).strip() for _ in range({k})]', VOTE]


def _self_refine(d: Design, s: TaskStyle) -> list[str]:
    review = (REVIEW_STEP_BY_STEP if d["review"] == "step_by_step" else REVIEW_PLAIN) + REVIEW_VERDICT
    return ([f"    reply = ask({TASK_MSG})[0]",
             f"    for _ in range({d['rounds']}):",
             '        attempt = f"# Task:\\n{task}\\n\\n# Proposed answer: {reply[\'answer\']}"']
            + _call("attempt", temperature=0.0, role=_q(REVIEWER_ROLE), keys='["feedback", "correct"]',
                    instructions=_q(review), indent="        ", target="review")
            + ['        if str(review["correct"]).strip().lower() == "true":',
               "            break",
               '        reply = ask(f"{attempt}\\n\\n# Reviewer feedback:\\n{review[\'feedback\']}\\n\\nGive a corrected answer.")[0]',
               f'    return {{"answer": {ANSWER}}}'])


def _debate(d: Design, s: TaskStyle) -> list[str]:
    return [f'    answers = [str(r["answer"]).strip() for r in ask({TASK_MSG}, n={d["debaters"]})]',
            f"    for _ in range({d['rounds']}):",
            "        updated = []",
            "        for i, own in enumerate(answers):",
            '            others = "\\n".join(f"Another agent answered: {a}" for j, a in enumerate(answers) if j != i)',
            '            reply = ask(f"# Task:\\n{task}\\n\\nYour answer: {own}\\n{others}\\nWeigh the other answers and give your updated answer.")[0]',
            f"            updated.append({ANSWER})",
            "        answers = updated",
            VOTE]


def _dynamic_role(d: Design, s: TaskStyle) -> list[str]:
    experts = [_role(d, s), *OTHER_EXPERTS[: d["experts"] - 1]]
    route = "Choose the expert best suited to the task and copy its name exactly into `expert`."
    return ([f"    experts = [{', '.join(_q(e) for e in experts)}]"]
            + _call('f"# Task:\\n{task}\\n\\n# Experts:\\n" + "\\n".join(experts)', temperature=0.0,
                    role=_q(ROUTER_ROLE), keys='["expert"]', instructions=_q(route), indent="    ", target="choice")
            + ['    picked = str(choice["expert"]).strip().lower()',
               f"    reply = ask({TASK_MSG}, role=next((e for e in experts if e.lower() == picked), experts[0]))[0]",
               f'    return {{"answer": {ANSWER}}}'])


def _code(d: Design, s: TaskStyle) -> list[str]:
    fmt = s.answer_format if d["answer_format"] == "precise" else LOOSE_FORMAT
    text = (CODE_PLAN if d["reasoning"] else "") + CODE_TEXT + fmt
    out = [f"    for _ in range({d['attempts']}):"]
    out += _call('f"Solve this task with Python code.\\n# Task:\\n{task}"', temperature=d["temperature"],
                 role=_q(_role(d, s)), keys=_keys(d, "code"), instructions=_q(text), indent="        ", target="reply")
    out += ["        try:",
            '            result = agent.execute_code(str(reply["code"]), timeout=5)',
            "            if result is not None and str(result).strip():",
            '                return {"answer": str(result).strip()}',
            "        except Exception:",
            "            pass"]
    if d["fallback"] == "none":
        return out + ['    return {"answer": ""}']
    return out + [f"    reply = ask({TASK_MSG})[0]", f'    return {{"answer": {ANSWER}}}']


def _decomposition(d: Design, s: TaskStyle) -> list[str]:
    k = d["subquestions"]
    plan = f"Break the task into at most {k} short sub-questions, one per line, in `subquestions`. Do not solve them."
    return (_call(TASK_MSG, temperature=0.0, role=_q(PLANNER_ROLE), keys='["subquestions"]', instructions=_q(plan),
                  indent="    ", target="plan")
            + ['    notes = ""',
               f'    for step in str(plan["subquestions"]).splitlines()[:{k}]:',
               '        reply = ask(f"# Task:\\n{task}\\n\\n# Solved so far:\\n{notes}\\n# Sub-question:\\n{step}")[0]',
               '        notes += f"- {step}: {reply[\'answer\']}\\n"',
               '    reply = ask(f"# Task:\\n{task}\\n\\n# Solved sub-questions:\\n{notes}")[0]',
               f'    return {{"answer": {ANSWER}}}'])


_BODIES = {"cot": _cot, "self_consistency": _self_consistency, "self_refine": _self_refine, "debate": _debate,
           "dynamic_role": _dynamic_role, "code": _code, "decomposition": _decomposition}


def render_code(d: Design, style: TaskStyle) -> str:
    """The `solver(agent, task)` source of a design."""
    head = ["def solver(agent, task):"]
    if d.technique in VOTING:
        head.append("    from collections import Counter")
    head += _ask(d, style)
    return "\n".join(head + _BODIES[d.technique](d, style)) + "\n"


_PLANS = {
    "cot": lambda d: "one call",
    "self_consistency": lambda d: (f"majority vote of {d['samples']} samples "
                                   + ("from one call" if d["batching"] == "n" else "from separate calls")),
    "self_refine": lambda d: (f"up to {d['rounds']} review round(s)"
                              + (", checked step by step" if d["review"] == "step_by_step" else "")),
    "debate": lambda d: f"debate of {d['debaters']} agents for {d['rounds']} round(s), then a vote",
    "dynamic_role": lambda d: f"a router picks one of {d['experts']} experts",
    "code": lambda d: (f"Python code run by execute_code, {d['attempts']} attempt(s), "
                       + ("then a fallback answer" if d["fallback"] == "cot" else "no fallback")),
    "decomposition": lambda d: f"up to {d['subquestions']} sub-questions answered in order",
}
_OPENERS = ("Analysis:", "Plan:", "Idea:")


def render_analysis(d: Design, rng: random.Random) -> str:
    """One sentence naming the design (the opener varies; the rest is a function of the design)."""
    knobs = ["expert role" if d["role"] == "expert" else "generic role",
             "reasoning" if d["reasoning"] else "no reasoning",
             "precise format" if d["answer_format"] == "precise" else "loose format",
             f"temperature {d['temperature']}"]
    return f"{rng.choice(_OPENERS)} {d.technique} ({_PLANS[d.technique](d)}); {', '.join(knobs)}."


def render_action(d: Design, style: TaskStyle, rng: random.Random) -> str:
    """A whole reply: the analysis, then the workflow in one python block, nothing after it."""
    return f"{render_analysis(d, rng)}\n\n```python\n{render_code(d, style)}```"
