"""Everything the meta-agent reads, in one place: the system prompt, the executor API it may use, the
technique menu, the task and example workflows, the feedback after each turn, and the repair requests.

Written for this project. The state is a chat: [system, user(task, API, principles, examples, format)]
followed by the last k turns as (assistant: the chosen workflow, user: its feedback) pairs. Turns that fell
out of the window are summarised in the first user message, with the best workflow so far kept in view.
"""
from __future__ import annotations

SYSTEM = """\
You design workflows: short Python programs that solve a task by calling a strong language model.
You cannot answer the task's questions yourself; your workflow is run on every question of a validation
set and is judged only by how many it gets right. Study what worked and what failed, then improve it."""

EXECUTOR_API = """\
## What a workflow can use
Write a function `solver(agent, task: str) -> dict`. `task` is the text of one question; return
`{"answer": ...}` in the answer format described above. The `agent` object offers:

- `agent.call_json_format_llm(messages=[{"role": "user", "content": ...}], temperature=0.0,
  num_of_response=1, agent_role="...", return_dict_keys=["reasoning", "answer"], instructions="...")`
  returns a list of `num_of_response` dicts, one per sampled reply, each with the requested keys. The
  strong model sees the role, the keys and the instructions, so say precisely what each key must hold.
- `agent.call_llm(messages=[...], temperature=0.0, num_of_response=1)` returns a list of strings.
- `agent.execute_code(code, timeout=5)` runs Python source in a separate process and returns the value
  of its `solution()` function (or of its last expression); it raises an exception if the code fails.

The workflow runs in a sandbox: standard library only, no files, no network. Every call costs money and
time, so spend calls where they pay off. Exceptions you do not catch make the question count as wrong."""

PRINCIPLES = """\
## Techniques worth trying (combine and tune them)
- Ask for step-by-step reasoning before the answer (a "reasoning" key placed before "answer").
- Give the model an expert role that fits the task, and state the answer format exactly.
- Sample several answers at a temperature above 0 and take a majority vote (self-consistency).
- Let the model check or critique a candidate answer and revise it (self-refinement, verification).
- Let several model instances answer, show each the others' answers, and vote (debate).
- Break a hard question into sub-questions and answer them in order (decomposition).
- For calculations, ask for a Python `solution()` and run it with `agent.execute_code`, with a fallback.
- Normalise answers (numbers, spacing, case) before comparing or voting."""

OUTPUT_FORMAT = """\
## How to reply
First, a short analysis: what the results show and what you will change. Then the complete new workflow
in exactly one ```python code block that defines `solver(agent, task)`. Nothing after the code block."""

FIRST_TURN = "Write a workflow that does better than the examples above."
NEXT_TURN = "Write an improved workflow: keep what works, fix what failed."

MAX_CASE_CHARS = 700


def clip(text: object, limit: int = MAX_CASE_CHARS) -> str:
    s = str(text)
    return s if len(s) <= limit else s[: limit - 20] + f" ... [{len(s) - limit + 20} more characters]"


def pct(acc: float | None) -> str:
    return "unmeasured" if acc is None else f"{100 * acc:.1f}%"


def code_block(code: str) -> str:
    return f"```python\n{code.strip()}\n```"


def task_message(description: str, examples: list[dict], *, hidden_turns: int = 0,
                 best_hidden: dict | None = None, n_items: int) -> str:
    """The first user message. `examples`: [{"name", "code", "valid_acc"}]; `best_hidden`: the best
    generated workflow among turns no longer in the window ({"turn", "code", "valid_acc"}), if any."""
    parts = [f"# The task\n{description.strip()}", EXECUTOR_API, PRINCIPLES,
             f"## Example workflows (validation accuracy on the same {n_items} questions your workflow "
             "will be judged on)"]
    for ex in examples:
        parts.append(f"### {ex['name']}: {pct(ex['valid_acc'])}\n{code_block(ex['code'])}")
    if hidden_turns:
        line = f"## Earlier turns\n{hidden_turns} earlier turn(s) are not shown."
        if best_hidden is not None:
            line += (f" The best of them (turn {best_hidden['turn'] + 1}, {pct(best_hidden['valid_acc'])}) "
                     f"was:\n{code_block(best_hidden['code'])}")
        parts.append(line)
    parts.append(OUTPUT_FORMAT)
    parts.append(NEXT_TURN if hidden_turns else FIRST_TURN)
    return "\n\n".join(parts)


def feedback_message(*, valid_acc: float | None, n_items: int, previous_acc: float | None,
                     best_acc: float | None, cases: list[dict], status: str, error: str | None = None) -> str:
    """What the meta-agent reads after its workflow ran. `cases`: [{"question", "answer", "expected",
    "error"}] (a few, failures first)."""
    if status != "ok":
        body = ("# Result\nYour workflow could not be run, even after repairs, so it scored nothing.\n"
                f"Last error:\n{clip(error or 'unknown error', 1500)}")
        return f"{body}\n\n{NEXT_TURN}"

    def delta(ref):
        if ref is None or valid_acc is None:
            return "n/a"
        return f"{100 * (valid_acc - ref):+.1f} points"

    lines = [f"# Result\nValidation accuracy: {pct(valid_acc)} on {n_items} questions.",
             f"Change from the previous workflow ({pct(previous_acc)}): {delta(previous_acc)}.",
             f"Change from the best so far ({pct(best_acc)}): {delta(best_acc)}."]
    if cases:
        lines.append("\n## Some questions and what the workflow did")
        for i, c in enumerate(cases, 1):
            lines.append(f"### Case {i}\nQuestion:\n{clip(c['question'])}")
            if c.get("error"):
                lines.append(f"The workflow raised an error:\n{clip(c['error'])}")
            else:
                lines.append(f"Workflow's answer: {clip(c['answer'], 300)}")
            lines.append(f"Expected answer: {clip(c['expected'], 300)}")
    return "\n".join(lines) + f"\n\n{NEXT_TURN}"


def repair_message(problem: str) -> str:
    """Asks for a fixed workflow after a parse failure or a failed self-check."""
    return ("Your reply could not be used:\n"
            f"{clip(problem, 2500)}\n\n"
            "Fix the problem and reply with the complete corrected workflow in exactly one ```python block "
            "that defines `solver(agent, task)`.")
