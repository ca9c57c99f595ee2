"""Designs -> workflow source and meta-agent replies (analysis + one python block).

Every workflow has the same shape: `solver(agent, task)` holds the few lines of the technique, right after
the analysis that names it, and calls a module-level helper `ask(agent, content, ...)` defined after it,
whose keyword defaults hold the shared knobs (temperature, role, requested keys, instructions) and whose
body is the one `agent.call_json_format_llm` call, identical in every workflow; a reviewer, router, planner
or code request overrides what it needs. So the knobs sit in one visible place (`describe` reads them
back), and a small model has one call to learn, not seven, and writes the technique's lines next to the
sentence that chose it.

The source is plain and self-contained: standard library only, every path returns {"answer": ...}.
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
ROUTE = "Choose the expert best suited to the task and copy its name exactly into `expert`."
CODE_TEXT = "Write Python code in `code` defining `solution()`, which returns the final answer. "
CODE_PLAN = "Explain your plan in `reasoning` first. "
TASK = 'f"# Task:\\n{task}"'
VOTING = ("self_consistency", "debate")
VOTE = '    return {"answer": Counter(answers).most_common(1)[0][0]}'
ANSWER_OF_FIRST = '[0]["answer"]).strip()'


def _q(s: str) -> str:
    """A Python string literal, in double quotes unless the text holds some."""
    r = repr(s)
    if r.startswith("'") and '"' not in s:
        r = '"' + r[1:-1].replace("\\'", "'") + '"'
    return r


def _format(d: Design, s: TaskStyle) -> str:
    return s.answer_format if d["answer_format"] == "precise" else LOOSE_FORMAT


def _keys(d: Design, last: str = "answer") -> str:
    return f'("reasoning", "{last}")' if d["reasoning"] else f'("{last}",)'


def _role(d: Design, s: TaskStyle) -> str:
    return s.role if d["role"] == "expert" else GENERIC_ROLE


def _helper(d: Design, s: TaskStyle) -> list[str]:
    instructions = (REASONING_TEXT if d["reasoning"] else "") + _format(d, s)
    return [f"def ask(agent, content, n=1, temperature={d['temperature']}, role={_q(_role(d, s))},",
            f"        keys={_keys(d)},",
            f"        instructions={_q(instructions)}):",
            "    return agent.call_json_format_llm(",
            '        messages=[{"role": "user", "content": content}],',
            "        temperature=temperature,",
            "        num_of_response=n,",
            "        agent_role=role,",
            "        return_dict_keys=list(keys),",
            "        instructions=instructions,",
            "    )"]


def _cot(d: Design, s: TaskStyle) -> list[str]:
    return [f'    return {{"answer": str(ask(agent, {TASK}){ANSWER_OF_FIRST}}}']


def _self_consistency(d: Design, s: TaskStyle) -> list[str]:
    k = d["samples"]
    if d["batching"] == "n":
        return [f'    answers = [str(r["answer"]).strip() for r in ask(agent, {TASK}, n={k})]', VOTE]
    return [f'    answers = [str(ask(agent, {TASK}){ANSWER_OF_FIRST} for _ in range({k})]', VOTE]


def _self_refine(d: Design, s: TaskStyle) -> list[str]:
    review = (REVIEW_STEP_BY_STEP if d["review"] == "step_by_step" else REVIEW_PLAIN) + REVIEW_VERDICT
    return [f"    answer = str(ask(agent, {TASK}){ANSWER_OF_FIRST}",
            f"    for _ in range({d['rounds']}):",
            '        attempt = f"# Task:\\n{task}\\n\\n# Proposed answer: {answer}"',
            f'        review = ask(agent, attempt, temperature=0.0, role={_q(REVIEWER_ROLE)}, keys=("feedback", "correct"),',
            f"                     instructions={_q(review)})[0]",
            '        if str(review["correct"]).strip().lower() == "true":',
            "            break",
            '        revision = f"{attempt}\\n\\n# Reviewer feedback:\\n{review[\'feedback\']}\\n\\nGive a corrected answer."',
            f"        answer = str(ask(agent, revision){ANSWER_OF_FIRST}",
            '    return {"answer": answer}']


def _debate(d: Design, s: TaskStyle) -> list[str]:
    return [f'    answers = [str(r["answer"]).strip() for r in ask(agent, {TASK}, n={d["debaters"]})]',
            f"    for _ in range({d['rounds']}):",
            "        updated = []",
            "        for i, own in enumerate(answers):",
            '            others = "\\n".join(f"Another agent answered: {a}" for j, a in enumerate(answers) if j != i)',
            '            debate = f"# Task:\\n{task}\\n\\nYour answer: {own}\\n{others}\\nWeigh the other answers and give your updated answer."',
            f"            updated.append(str(ask(agent, debate){ANSWER_OF_FIRST})",
            "        answers = updated",
            VOTE]


def _dynamic_role(d: Design, s: TaskStyle) -> list[str]:
    experts = [_role(d, s), *OTHER_EXPERTS[: d["experts"] - 1]]
    return [f"    experts = [{', '.join(_q(e) for e in experts)}]",
            '    menu = f"# Task:\\n{task}\\n\\n# Experts:\\n" + "\\n".join(experts)',
            f'    choice = ask(agent, menu, temperature=0.0, role={_q(ROUTER_ROLE)}, keys=("expert",), instructions={_q(ROUTE)})[0]',
            '    picked = str(choice["expert"]).strip().lower()',
            "    role = next((e for e in experts if e.lower() == picked), experts[0])",
            f'    return {{"answer": str(ask(agent, {TASK}, role=role){ANSWER_OF_FIRST}}}']


def _code(d: Design, s: TaskStyle) -> list[str]:
    text = (CODE_PLAN if d["reasoning"] else "") + CODE_TEXT + _format(d, s)
    out = [f"    for _ in range({d['attempts']}):",
           f'        reply = ask(agent, f"Solve this task with Python code.\\n# Task:\\n{{task}}", keys={_keys(d, "code")},',
           f"                    instructions={_q(text)})[0]",
           "        try:",
           '            result = agent.execute_code(str(reply["code"]), timeout=5)',
           "            if result is not None and str(result).strip():",
           '                return {"answer": str(result).strip()}',
           "        except Exception:",
           "            pass"]
    if d["fallback"] == "none":
        return out + ['    return {"answer": ""}']
    return out + [f'    return {{"answer": str(ask(agent, {TASK}){ANSWER_OF_FIRST}}}']


def _decomposition(d: Design, s: TaskStyle) -> list[str]:
    k = d["subquestions"]
    plan = f"Break the task into at most {k} short sub-questions, one per line, in `subquestions`. Do not solve them."
    return [f'    plan = ask(agent, {TASK}, temperature=0.0, role={_q(PLANNER_ROLE)}, keys=("subquestions",),',
            f"               instructions={_q(plan)})[0]",
            '    notes = ""',
            f'    for step in str(plan["subquestions"]).splitlines()[:{k}]:',
            '        reply = ask(agent, f"# Task:\\n{task}\\n\\n# Solved so far:\\n{notes}\\n# Sub-question:\\n{step}")[0]',
            '        notes += f"- {step}: {reply[\'answer\']}\\n"',
            f'    return {{"answer": str(ask(agent, f"# Task:\\n{{task}}\\n\\n# Solved sub-questions:\\n{{notes}}"){ANSWER_OF_FIRST}}}']


_BODIES = {"cot": _cot, "self_consistency": _self_consistency, "self_refine": _self_refine, "debate": _debate,
           "dynamic_role": _dynamic_role, "code": _code, "decomposition": _decomposition}


def render_code(d: Design, style: TaskStyle) -> str:
    """The `solver(agent, task)` source of a design."""
    head = ["def solver(agent, task):"]
    if d.technique in VOTING:
        head.append("    from collections import Counter")
    return "\n".join(head + _BODIES[d.technique](d, style) + ["", ""] + _helper(d, style)) + "\n"


_PLANS = {
    "cot": lambda d: "one call",
    "self_consistency": lambda d: (f"majority vote of {d['samples']} samples "
                                   + ("from one call" if d["batching"] == "n" else "from separate calls")),
    "self_refine": lambda d: (f"up to {d['rounds']} review round(s)"
                              + (", checked step by step" if d["review"] == "step_by_step" else "")),
    "debate": lambda d: f"{d['debaters']} agents debate for {d['rounds']} round(s), then vote",
    "dynamic_role": lambda d: f"a router picks one of {d['experts']} experts",
    "code": lambda d: (f"a Python program run by execute_code, {d['attempts']} attempt(s), "
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
