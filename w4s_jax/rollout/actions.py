"""Extract the workflow from a meta-agent reply: the last closed ```python block that defines `solver`.

Every way a reply can miss (no block, only prose, an unclosed block, blocks without `solver`) raises
ActionParseError with a message written for the meta-agent, which is sent back to it for a repair.
"""
from __future__ import annotations

import ast
import re

# A fence opens with ``` (optionally a language tag) at the start of a line and closes with ``` alone.
_FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[ \t]*$", re.M)


class ActionParseError(ValueError):
    """The reply holds no usable workflow; the message explains why, for the meta-agent."""


def _blocks(text: str) -> tuple[list[tuple[str, str]], bool]:
    """[(language, body)] of closed blocks, and whether a block was left open at the end."""
    blocks, open_lang, open_at = [], None, None
    for m in _FENCE.finditer(text):
        if open_at is None:
            open_lang, open_at = m.group(1).lower(), m.end()
        elif m.group(1) == "":
            blocks.append((open_lang, text[open_at:m.start()].strip("\n")))
            open_lang, open_at = None, None
        else:  # "```python" while a block is open: the earlier one was never closed; start again here
            open_lang, open_at = m.group(1).lower(), m.end()
    return blocks, open_at is not None


def _defines_solver(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return "def solver" in code  # a syntax error is reported by the self-check, with its line
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "solver" for n in tree.body)


def extract_workflow(reply: str) -> str:
    """The source of the last closed python block that defines `solver`."""
    if not isinstance(reply, str) or not reply.strip():
        raise ActionParseError("The reply was empty. Reply with an analysis and one ```python block.")
    blocks, unclosed = _blocks(reply)
    python = [body for lang, body in blocks if lang in ("python", "py", "python3", "")]
    with_solver = [body for body in python if _defines_solver(body)]
    if with_solver:
        return with_solver[-1] + "\n"
    if unclosed:
        raise ActionParseError("The ```python block was never closed (no closing ``` line), so the code may be "
                               "cut off. Reply with the whole workflow in one block that ends with ```.")
    if not blocks:
        raise ActionParseError("The reply contains no ```python code block, only prose. Put the complete "
                               "workflow in one ```python block.")
    if not python:
        langs = ", ".join(sorted({lang for lang, _ in blocks}))
        raise ActionParseError(f"The reply's code blocks are not Python (found: {langs}). Put the workflow "
                               "in a ```python block.")
    raise ActionParseError(f"None of the {len(python)} python block(s) in the reply defines "
                           "`solver(agent, task)` at top level. Define it in one complete block.")
