"""Seed workflows for the code benchmarks (HumanEval, MBPP).

The generic baselines of `workflows.py` (cot, cot_sc, self_refine, debate, dynamic_role) with the
code answer format, plus `self_test`: generate the function, run it on the task's public examples with
`agent.execute_code`, and revise it while examples fail. Like every seed workflow the source runs in the
sandbox (standard library only, no w4s_jax import).

self_test, per item:
- the examples: the `assert` lines given in the task (MBPP gives one); when there are none (HumanEval
  shows examples in the docstring), 1 call at temperature 0 turns the task's examples into asserts;
- 1 call (temperature 0) writes the function; the examples run on it in one `execute_code` (the task
  text runs first when it is itself Python, so HumanEval's helper functions exist);
- while some fail, up to 2 rounds of 1 revision call (temperature 0) that sees the failures, each
  followed by a new run of the examples. The last version is the answer.
"""
from __future__ import annotations

import re

from .workflows import REASONING_FIRST, seed_workflows

SELF_TEST = "self_test"
REVISIONS = 2

_SELF_TEST = '''
def solver(agent, task: str):
    instructions = __INSTRUCTIONS__
    role = __ROLE__

    def strip_fences(text):
        text = str(text)
        if "```" in text:
            parts = text.split("```")
            body = parts[1] if len(parts) > 1 else text
            first, _, rest = body.partition("\\n")
            return rest if first.strip().lower() in ("", "python", "py", "python3") else body
        return text

    try:  # HumanEval's task text is itself Python (helper functions the answer may call)
        compile(task, "<task>", "exec")
        setup = task
    except (SyntaxError, ValueError):
        setup = ""

    tests = [line.strip() for line in task.splitlines() if line.strip().startswith("assert ")]
    if not tests:
        reply = agent.call_json_format_llm(
            messages=[{"role": "user", "content": f"# Task:\\n{task}"}],
            temperature=0.0,
            num_of_response=1,
            agent_role="software tester",
            return_dict_keys=["tests"],
            instructions="Write the example calls shown in the task, with their expected results, as Python "
                         "assert statements, one per line in `tests` (a string). Use only examples the task "
                         "states; write none if it states none.",
        )[0]
        tests = [line.strip() for line in str(reply["tests"]).splitlines() if line.strip().startswith("assert ")]

    def failures(code):
        if not tests:
            return []
        checks = "".join(
            f"try:\\n    {t}\\nexcept Exception as _e:\\n"
            f"    _failed.append({t!r} + ' -> ' + type(_e).__name__ + (': ' + str(_e)[:200] if str(_e) else ''))\\n"
            for t in tests)
        program = f"{setup}\\n{code}\\n\\n_failed = []\\n{checks}"
        snippet = ("_ns = {'__name__': '__candidate__'}\\n"
                   f"exec(compile({program!r}, '<candidate>', 'exec'), _ns)\\n"
                   "_ns['_failed']")
        try:
            return list(agent.execute_code(snippet, timeout=5))
        except TimeoutError:
            return ["the examples did not finish within 5 seconds (an endless loop?)"]
        except Exception as e:
            return [f"running the code failed: {e}"]

    reply = agent.call_json_format_llm(
        messages=[{"role": "user", "content": f"# Your task:\\n{task}"}],
        temperature=0.0,
        num_of_response=1,
        agent_role=role,
        return_dict_keys=["reasoning", "answer"],
        instructions=instructions,
    )[0]
    code = strip_fences(reply["answer"])
    for _ in range(__REVISIONS__):
        failed = failures(code)
        if not failed:
            break
        report = "\\n".join(failed[:5])
        revision = (f"# Your task:\\n{task}\\n\\n# Your previous code:\\n{code}\\n\\n"
                    f"# Failed examples:\\n{report}\\n\\nFind the mistake and give the corrected function.")
        reply = agent.call_json_format_llm(
            messages=[{"role": "user", "content": revision}],
            temperature=0.0,
            num_of_response=1,
            agent_role=role,
            return_dict_keys=["reasoning", "answer"],
            instructions=instructions,
        )[0]
        code = strip_fences(reply["answer"])
    return {"answer": code}
'''


def self_test_workflow(answer_format: str, *, role: str) -> str:
    values = {"__INSTRUCTIONS__": repr(REASONING_FIRST + answer_format), "__ROLE__": repr(role),
              "__REVISIONS__": str(REVISIONS)}
    return re.sub("|".join(values), lambda m: values[m.group(0)], _SELF_TEST).lstrip("\n")


def code_seed_workflows(answer_format: str, *, role: str) -> dict[str, str]:
    """name -> `solver(agent, task)` source: the generic baselines for code answers, and self_test."""
    flows = seed_workflows(answer_format, role=role, code=False)
    flows[SELF_TEST] = self_test_workflow(answer_format, role=role)
    return flows
