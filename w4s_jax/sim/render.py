"""The text of the simulated model's replies: reasoning, answers (in digits or in words), code, verdicts.

A reply is JSON with exactly the requested keys when the request asked for JSON, else plain text. The
reasoning spells out the steps of the program behind the answer given (the right one or a buggy one), so
its length, and the usage billed for it, grows with the item's difficulty.
"""
from __future__ import annotations

import json

from .items import ItemProfile
from .program import format_value
from .request import Call

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]
_SCALES = [(10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand")]


def _int_words(n: int) -> str:
    if n < 0:
        return "minus " + _int_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("-" + _ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return _ONES[n // 100] + " hundred" + (" and " + _int_words(n % 100) if n % 100 else "")
    for size, name in _SCALES:
        if n >= size:
            return _int_words(n // size) + " " + name + (" " + _int_words(n % size) if n % size else "")
    raise AssertionError(n)


def number_words(x) -> str:
    """A number spelled out in English words, digits nowhere: what a scorer of numbers cannot read."""
    if isinstance(x, float) and x != int(x):
        whole, _, frac = format_value(abs(x)).partition(".")
        sign = "minus " if x < 0 else ""
        return sign + _int_words(int(whole)) + " point " + " ".join(_ONES[int(c)] for c in frac)
    return _int_words(int(x))


def spoken_answer(item: ItemProfile, value) -> str:
    """The answer in words (choice: the option's position)."""
    if item.kind == "number" and isinstance(value, (int, float)):
        return f"it comes to {number_words(value)}"
    if item.kind == "choice":
        return f"the {_ORDINALS[min(9, max(0, ord(str(value)[0]) - ord('A')))]} option"
    return str(value)


def reasoning_lines(item: ItemProfile, outcome: int | None, value) -> list[str]:
    """The steps of the program behind `value` (cached per item and outcome), or a generic sentence."""
    if outcome is not None and outcome in item.explained:
        return item.explained[outcome]
    prog = item.programs[outcome] if (outcome is not None and outcome < len(item.programs)) else None
    lines = None
    if prog is not None:
        try:
            lines = ["Let me work through the problem one step at a time, keeping track of each quantity."]
            lines += [f"Step {k}: {s}" for k, s in enumerate(prog.explain(), 1)]
            lines.append(f"That gives {format_value(value)}.")
        except Exception:  # a mutated program may fail to explain itself; its value is known anyway
            lines = None
    if lines is None:
        lines = [f"Taking the facts of the problem one at a time over {_steps(item)}, "
                 f"I end up with {format_value(value)}."]
    if outcome is not None:
        item.explained[outcome] = lines
    return lines


def _steps(item: ItemProfile) -> str:
    return "the one step" if item.steps == 1 else f"the {item.steps} steps"


def _ops(item: ItemProfile) -> str:
    return "the one operation" if item.steps == 1 else f"the {item.steps} operations"


def _answer_field(call: Call, value, prose: bool):
    if prose:
        return spoken_answer(call.item, value)
    if call.format_ok or not isinstance(value, (int, float)):
        return value
    return format_value(value)


def _json(call: Call, fields: dict) -> str:
    """A JSON object with exactly the requested keys, each filled by what its role asks for."""
    return json.dumps({k: fields.get(r, "n/a") for k, r in zip(call.keys.names, call.keys.roles)})


def answer_reply(call: Call, value, outcome: int | None, prose: bool) -> str:
    """A reply stating an answer (solve, revise, debate)."""
    item = call.item
    steps = reasoning_lines(item, outcome, value) if call.reasoning else []
    if call.json_mode:
        return _json(call, {"answer": _answer_field(call, value, prose),
                            "reasoning": " ".join(steps or reasoning_lines(item, outcome, value))})
    lines = list(steps)
    if prose:
        lines.append(f"So {spoken_answer(item, value)}.")
    elif call.format_ok:
        lines.append(f"Answer: {format_value(value) if isinstance(value, (int, float)) else value}")
    else:
        lines.append(f"The answer is {format_value(value) if isinstance(value, (int, float)) else value}.")
    return "\n".join(lines)


def code_source(item: ItemProfile, outcome: int) -> str:
    """The program of an outcome (cached per item): the reference solution or one of its buggy versions."""
    src = item.explained.get(("code", outcome))
    if src is None:
        prog = item.programs[outcome] if outcome < len(item.programs) else None
        src = prog.source() if prog is not None else f"def solution():\n    return {item.value(outcome)!r}\n"
        item.explained[("code", outcome)] = src
    return src


def code_reply(call: Call, outcome: int, stated_value, stated_outcome: int, prose: bool) -> str:
    """A reply with a `solution()` program (and, when a key asks for it, the answer worked out in words)."""
    item = call.item
    src = code_source(item, outcome)
    plan = (f"Store each quantity of the problem in a variable, apply {_ops(item)} in order "
            "and return the final quantity.")
    if call.json_mode:
        return _json(call, {"code": src, "answer": _answer_field(call, stated_value, prose), "reasoning": plan})
    return f"{plan}\n\n```python\n{src}```"


def review_reply(call: Call, candidate, reject: bool | None) -> str:
    """A verifier's reply: feedback and verdict (reject None: no candidate was found to check)."""
    item = call.item
    shown = format_value(candidate) if isinstance(candidate, (int, float)) else str(candidate)
    if reject is None:
        feedback, verdict = "I could not find a proposed answer to check.", "False"
    elif reject:
        feedback = (f"I went through {_steps(item)} again and one of them does not hold up, so the "
                    f"proposed result {shown} is not correct.")
        verdict = "False"
    else:
        feedback = (f"I went through {_steps(item)} again and each one checks out, so the proposed "
                    f"result {shown} is correct.")
        verdict = "True"
    if call.json_mode:
        return _json(call, {"verdict": verdict, "feedback": feedback, "reasoning": feedback})
    return feedback


def route_reply(call: Call, expert: str) -> str:
    return _json(call, {"expert": expert, "reasoning": f"The task needs a {expert}."})


def unknown_reply(call: Call) -> str:
    """No item recognised: what a model says when it cannot tell what the problem is."""
    text = "I could not find a problem to solve in your message; please include the full question."
    if call.json_mode:
        return _json(call, {"code": "def solution():\n    return None\n", "answer": text, "reasoning": text,
                            "feedback": text, "verdict": "False", "expert": text, "other": text})
    return text
