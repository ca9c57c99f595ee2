"""Seed workflows: the hand-designed baselines a W4S search starts from, as `solver(agent, task)` source.

Each workflow is a template written in the executor API of the public W4S code (DESIGN.md, "The executor
API inside a workflow"); `seed_workflows` fills in the benchmark's answer-format instruction and expert
role as Python literals. The sources run in the sandbox, so they use the standard library only (no
w4s_jax import) and keep any answer normalisation they need inside `solver`.

What each one does (call counts are per item; the simulated strong model reads these to model accuracy):
- cot:           1 call, reasoning then answer, temperature 0.
- cot_sc:        1 call with 5 samples at temperature 0.8; majority vote over normalised answers
                 (the first answer, in sample order, of the most frequent form wins ties).
- code:          1 call for a `solution()` program at temperature 0, run with `agent.execute_code`;
                 if it fails or returns nothing, 1 more call: the cot answer.
- self_refine:   1 cot call, then up to 2 rounds of (critique, and, when the critic finds a mistake,
                 a revised answer): 2 to 5 calls, temperature 0.
- debate:        3 debaters (1 call with 3 samples at temperature 0.8), then 1 more round in which
                 each sees the others' answers (3 calls at 0.8); majority vote over the final round.
- dynamic_role:  1 call picks an expert from a fixed list, then 1 cot call in that role.
"""
from __future__ import annotations

import re

WORKFLOW_NAMES = ("cot", "cot_sc", "self_refine", "debate", "dynamic_role")
CODE_WORKFLOW = "code"

# Shared by the templates that vote: numbers compare by value ("1,000", "1000.0" and "1000" agree),
# other answers by their trimmed, lower-cased text. Indented to sit inside `solver`.
_NORMALISE = '''
    def normalise(answer):
        text = " ".join(str(answer).split()).strip().rstrip(".").lower()
        number = text.replace(",", "").replace("$", "")
        try:
            value = float(number)
            return str(int(value)) if value == int(value) else str(value)
        except (ValueError, OverflowError):
            return text

    def majority(answers):
        counts = Counter(normalise(a) for a in answers)
        best = counts.most_common(1)[0][0]
        return next(a for a in answers if normalise(a) == best)
'''

_COT = '''
def solver(agent, task: str):
    instructions = __INSTRUCTIONS__
    messages = [{"role": "user", "content": f"# Your task:\\n{task}"}]
    reply = agent.call_json_format_llm(
        messages=messages,
        temperature=0.0,
        num_of_response=1,
        agent_role=__ROLE__,
        return_dict_keys=["reasoning", "answer"],
        instructions=instructions,
    )[0]
    return {"answer": str(reply["answer"])}
'''

_COT_SC = '''
def solver(agent, task: str):
    from collections import Counter
__NORMALISE__
    instructions = __INSTRUCTIONS__
    messages = [{"role": "user", "content": f"# Your task:\\n{task}"}]
    replies = agent.call_json_format_llm(
        messages=messages,
        temperature=0.8,
        num_of_response=5,
        agent_role=__ROLE__,
        return_dict_keys=["reasoning", "answer"],
        instructions=instructions,
    )
    answers = [str(reply["answer"]) for reply in replies]
    return {"answer": majority(answers)}
'''

_CODE = '''
def solver(agent, task: str):
    code_instructions = (
        "Write a self-contained Python program in `code` that defines a function `solution()` taking no "
        "arguments and returning the final answer (a number or a short string, not printed). Use only the "
        "standard library and no input(); make sure it finishes quickly. Explain your plan in `reasoning`."
    )
    messages = [{"role": "user", "content": f"Solve this problem by writing Python code.\\n# Your task:\\n{task}"}]
    reply = agent.call_json_format_llm(
        messages=messages,
        temperature=0.0,
        num_of_response=1,
        agent_role="Python programmer and " + __ROLE__,
        return_dict_keys=["reasoning", "code"],
        instructions=code_instructions,
    )[0]
    try:
        result = agent.execute_code(str(reply["code"]), timeout=5)
        if result is not None and str(result).strip():
            return {"answer": str(result)}
    except Exception:
        pass
    # The program failed or returned nothing: fall back to reasoning in words.
    instructions = __INSTRUCTIONS__
    messages = [{"role": "user", "content": f"# Your task:\\n{task}"}]
    reply = agent.call_json_format_llm(
        messages=messages,
        temperature=0.0,
        num_of_response=1,
        agent_role=__ROLE__,
        return_dict_keys=["reasoning", "answer"],
        instructions=instructions,
    )[0]
    return {"answer": str(reply["answer"])}
'''

_SELF_REFINE = '''
def solver(agent, task: str):
    instructions = __INSTRUCTIONS__
    messages = [{"role": "user", "content": f"# Your task:\\n{task}"}]
    reply = agent.call_json_format_llm(
        messages=messages,
        temperature=0.0,
        num_of_response=1,
        agent_role=__ROLE__,
        return_dict_keys=["reasoning", "answer"],
        instructions=instructions,
    )[0]
    reasoning, answer = str(reply["reasoning"]), str(reply["answer"])
    for _ in range(2):
        attempt = f"# Task:\\n{task}\\n\\n# Proposed reasoning:\\n{reasoning}\\n\\n# Proposed answer:\\n{answer}"
        review = agent.call_json_format_llm(
            messages=[{"role": "user", "content": attempt}],
            temperature=0.0,
            num_of_response=1,
            agent_role="meticulous reviewer",
            return_dict_keys=["feedback", "correct"],
            instructions=(
                "Check the proposed solution step by step and point out any mistake in `feedback`. "
                "Set `correct` to \\"True\\" if the answer is right and in the required format, else \\"False\\"."
            ),
        )[0]
        if str(review["correct"]).strip().lower() == "true":
            break
        revision = f"{attempt}\\n\\n# Reviewer feedback:\\n{review['feedback']}\\n\\nGive a corrected solution."
        reply = agent.call_json_format_llm(
            messages=[{"role": "user", "content": revision}],
            temperature=0.0,
            num_of_response=1,
            agent_role=__ROLE__,
            return_dict_keys=["reasoning", "answer"],
            instructions=instructions,
        )[0]
        reasoning, answer = str(reply["reasoning"]), str(reply["answer"])
    return {"answer": answer}
'''

_DEBATE = '''
def solver(agent, task: str):
    from collections import Counter
__NORMALISE__
    instructions = __INSTRUCTIONS__
    question = f"# Your task:\\n{task}"
    replies = agent.call_json_format_llm(
        messages=[{"role": "user", "content": question}],
        temperature=0.8,
        num_of_response=3,
        agent_role=__ROLE__,
        return_dict_keys=["reasoning", "answer"],
        instructions=instructions,
    )
    final = []
    for i, own in enumerate(replies):
        others = "\\n\\n".join(
            f"Another solver reasoned:\\n{r['reasoning']}\\nand answered: {r['answer']}"
            for j, r in enumerate(replies) if j != i
        )
        debate = (
            f"{question}\\n\\n# Your earlier solution:\\n{own['reasoning']}\\nAnswer: {own['answer']}\\n\\n"
            f"# Other solutions:\\n{others}\\n\\n"
            "Weigh the other solutions against yours and give your updated solution."
        )
        updated = agent.call_json_format_llm(
            messages=[{"role": "user", "content": debate}],
            temperature=0.8,
            num_of_response=1,
            agent_role=__ROLE__,
            return_dict_keys=["reasoning", "answer"],
            instructions=instructions,
        )[0]
        final.append(str(updated["answer"]))
    return {"answer": majority(final)}
'''

_DYNAMIC_ROLE = '''
def solver(agent, task: str):
    experts = __EXPERTS__
    choice = agent.call_json_format_llm(
        messages=[{"role": "user", "content": f"# Task:\\n{task}\\n\\n# Experts:\\n" + "\\n".join(experts)}],
        temperature=0.0,
        num_of_response=1,
        agent_role="task router",
        return_dict_keys=["reasoning", "expert"],
        instructions="Choose the expert best suited to solve the task. Put the expert's name, copied exactly "
                     "from the list, in `expert`.",
    )[0]
    picked = str(choice["expert"]).strip().lower()
    role = next((e for e in experts if e.lower() == picked), experts[0])
    instructions = __INSTRUCTIONS__
    reply = agent.call_json_format_llm(
        messages=[{"role": "user", "content": f"# Your task:\\n{task}"}],
        temperature=0.0,
        num_of_response=1,
        agent_role=role,
        return_dict_keys=["reasoning", "answer"],
        instructions=instructions,
    )[0]
    return {"answer": str(reply["answer"])}
'''

REASONING_FIRST = "Think through the problem step by step in `reasoning`. "

_TEMPLATES = {"cot": _COT, "cot_sc": _COT_SC, "self_refine": _SELF_REFINE, "debate": _DEBATE,
              "dynamic_role": _DYNAMIC_ROLE, CODE_WORKFLOW: _CODE}


def default_experts(role: str) -> list[str]:
    """The router's choices for dynamic_role: the task's expert first (the fallback), then three others."""
    return [role, "careful step-by-step problem solver", "critical thinker who double-checks every step",
            "helpful generalist assistant"]


def _render(template: str, answer_format: str, role: str, experts: list[str]) -> str:
    # One pass, so a placeholder-like word inside the inserted text is never substituted again.
    values = {"__NORMALISE__": _NORMALISE.strip("\n") + "\n", "__INSTRUCTIONS__": repr(REASONING_FIRST + answer_format),
              "__ROLE__": repr(role), "__EXPERTS__": repr(experts)}
    source = re.sub("|".join(values), lambda m: values[m.group(0)], template)
    return source.lstrip("\n")


def seed_workflows(answer_format: str, *, role: str, code: bool, experts: list[str] | None = None) -> dict[str, str]:
    """name -> `solver(agent, task)` source of the seed workflows for one benchmark.

    answer_format: the precise instruction for the `answer` field (e.g. "Put only the final number in
    `answer`, without units."); role: the executor's expert role (e.g. "math expert"); code: include the
    code-generation workflow (math benchmarks); experts: dynamic_role's choices (default: see above).
    """
    if not answer_format.strip() or not role.strip():
        raise ValueError("seed_workflows: answer_format and role must be non-empty")
    experts = list(experts) if experts else default_experts(role)
    names = WORKFLOW_NAMES + ((CODE_WORKFLOW,) if code else ())
    return {name: _render(_TEMPLATES[name], answer_format, role, experts) for name in names}
