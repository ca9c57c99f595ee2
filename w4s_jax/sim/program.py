"""Straight-line `solution()` programs: the reference solutions of arithmetic items, and their plausible bugs.

An item's reference code (GSM-Hard's `code` field, or the synthetic tasks' `meta["code"]`) is parsed into
a list of assignments over numbers and evaluated by a small interpreter of its own (assignments, `+ - * /
// % **`, unary minus, `round/int/float/abs/min/max`), so dataset code never runs in this process. What
does not fit that subset (loops, imports, calls to anything else) is refused: the caller falls back to
answer-only distractors.

The simulated model uses a program three ways: its steps, spelled out, are the reasoning of a reply; its
single mutations (an operator swapped, a constant off by one, a step dropped) are the item's plausible
wrong answers, and the buggy code a code request gets; its size and the digits it handles are the item's
difficulty and arithmetic load.
"""
from __future__ import annotations

import ast
import math
import random
from dataclasses import dataclass, field

_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
           ast.Pow: lambda a, b: _pow(a, b)}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"}
_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult}
_CALLS = {"round": round, "int": int, "float": float, "abs": abs, "min": min, "max": max}
MAX_MAGNITUDE = 1e15
_ANSWER_NAMES = {"result", "answer", "final_answer", "final_result", "ans"}  # reworded in reasoning text


class NotStraightLine(ValueError):
    """The code uses something outside the straight-line arithmetic subset."""


def _pow(a, b):
    if abs(b) > 12 or abs(a) > 1e6:
        raise NotStraightLine("power too large")
    return a ** b


def _eval(node: ast.expr, env: dict):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise NotStraightLine(f"undefined name {node.id}")
        return env[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        value = _BINOPS[type(node.op)](_eval(node.left, env), _eval(node.right, env))
        if isinstance(value, complex) or not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
            raise NotStraightLine("value out of range")
        return value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else v
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CALLS
            and not node.keywords and 1 <= len(node.args) <= 3):
        return _CALLS[node.func.id](*(_eval(a, env) for a in node.args))
    raise NotStraightLine(f"unsupported expression {type(node).__name__}")


@dataclass
class Step:
    target: str
    expr: ast.expr


@dataclass
class Program:
    steps: list[Step]
    result: ast.expr
    doc: str | None = None
    _trace: list | None = field(default=None, init=False, repr=False, compare=False)   # programs never change

    # ----- construction
    @classmethod
    def parse(cls, code: str) -> "Program":
        try:
            tree = ast.parse(code)
        except SyntaxError as e:
            raise NotStraightLine(f"syntax error: {e.msg}") from None
        fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "solution"]
        if len(fns) != 1 or fns[0].args.args:
            raise NotStraightLine("no solution() without arguments")
        body = list(fns[0].body)
        doc = None
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            doc = body.pop(0).value.value
        steps, result = [], None
        for i, st in enumerate(body):
            if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
                steps.append(Step(st.targets[0].id, st.value))
            elif isinstance(st, ast.AugAssign) and isinstance(st.target, ast.Name) and type(st.op) in _BINOPS:
                steps.append(Step(st.target.id, ast.BinOp(ast.Name(st.target.id, ast.Load()), st.op, st.value)))
            elif isinstance(st, ast.Return) and st.value is not None and i == len(body) - 1:
                result = st.value
            else:
                raise NotStraightLine(f"unsupported statement {type(st).__name__}")
        if result is None:
            raise NotStraightLine("no final return")
        prog = cls(steps, result, doc)
        prog.run()
        return prog

    # ----- evaluation
    def trace(self) -> list[tuple[str, object]]:
        if self._trace is None:
            env: dict = {}
            out = []
            for s in self.steps:
                env[s.target] = _eval(s.expr, env)
                out.append((s.target, env[s.target]))
            out.append(("result", _eval(self.result, env)))
            self._trace = out
        return list(self._trace)

    def run(self):
        return self.trace()[-1][1]

    @property
    def n_ops(self) -> int:
        return sum(1 for s in [*self.steps, Step("", self.result)] for n in ast.walk(s.expr)
                   if isinstance(n, ast.BinOp))

    def constants(self) -> list:
        return [n.value for s in self.steps for n in ast.walk(s.expr)
                if isinstance(n, ast.Constant) and isinstance(n.value, (int, float))]

    # ----- rendering
    def source(self) -> str:
        lines = ["def solution():"]
        if self.doc:
            lines.append(f"    {ast.unparse(ast.Constant(self.doc))}")
        lines += [f"    {s.target} = {ast.unparse(s.expr)}" for s in self.steps]
        lines.append(f"    return {ast.unparse(self.result)}")
        return "\n".join(lines) + "\n"

    def explain(self) -> list[str]:
        """One sentence per computing step, with the values it produced (the reasoning of a reply)."""
        env: dict = {}
        out = []
        for s, (_, value) in zip(self.steps, self.trace()):
            filled = _fill(s.expr, env) if _has_binop(s.expr) else None
            env[s.target] = value
            if filled is not None:
                name = "the value" if s.target.lower() in _ANSWER_NAMES else s.target.replace("_", " ")
                out.append(f"{name} = {filled} = {format_value(env[s.target])}.")
        return out

    # ----- plausible bugs
    def mutations(self, rng: random.Random):
        """Every single plausible bug, in a seeded random order, built one at a time: (kind, mutated program)."""
        sites = []
        exprs = [*[s.expr for s in self.steps], self.result]
        for i, e in enumerate(exprs):
            for path, node in _nodes(e):
                if isinstance(node, ast.BinOp) and type(node.op) in _SWAP:
                    sites.append(("wrong operator", i, path, node))
                    sites.append(("missing step", i, path, node))
                elif (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
                      and not isinstance(node.value, bool) and i < len(self.steps)):
                    sites.append(("off by one", i, path, node))
                    sites.append(("off by minus one", i, path, node))
        rng.shuffle(sites)
        for kind, i, path, node in sites:
            if kind == "wrong operator":
                new = ast.BinOp(node.left, _SWAP[type(node.op)](), node.right)
            elif kind == "missing step":
                new = node.left
            else:
                new = ast.Constant(node.value + (1 if kind == "off by one" else -1))
            yield kind.replace("minus ", ""), self._replace(i, path, new)

    def _replace(self, index: int, path: tuple, new: ast.expr) -> "Program":
        exprs = [*[s.expr for s in self.steps], self.result]
        exprs[index] = _replaced(exprs[index], path, new)
        steps = [Step(s.target, exprs[k]) for k, s in enumerate(self.steps)]
        return Program(steps, exprs[-1], self.doc)


def _has_binop(e: ast.expr) -> bool:
    if isinstance(e, ast.BinOp):
        return True
    if isinstance(e, ast.UnaryOp):
        return _has_binop(e.operand)
    return isinstance(e, ast.Call) and any(_has_binop(a) for a in e.args)


def _nodes(e: ast.expr, path: tuple = ()):
    yield path, e
    if isinstance(e, ast.BinOp):
        yield from _nodes(e.left, path + ("left",))
        yield from _nodes(e.right, path + ("right",))
    elif isinstance(e, ast.UnaryOp):
        yield from _nodes(e.operand, path + ("operand",))
    elif isinstance(e, ast.Call):
        for k, a in enumerate(e.args):
            yield from _nodes(a, path + (k,))


def _replaced(e: ast.expr, path: tuple, new: ast.expr) -> ast.expr:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(e, ast.BinOp):
        return ast.BinOp(_replaced(e.left, rest, new) if head == "left" else e.left, e.op,
                         _replaced(e.right, rest, new) if head == "right" else e.right)
    if isinstance(e, ast.UnaryOp):
        return ast.UnaryOp(e.op, _replaced(e.operand, rest, new))
    args = list(e.args)
    args[head] = _replaced(args[head], rest, new)
    return ast.Call(e.func, args, [])


def _fill(e: ast.expr, env: dict) -> str:
    """The expression with its names replaced by their values: "3 * 12 + 14"."""
    if isinstance(e, ast.Name):
        return format_value(env[e.id])
    if isinstance(e, ast.Constant):
        return format_value(e.value)
    if isinstance(e, ast.BinOp):
        return f"{_fill_operand(e.left, env)} {_SYMBOL[type(e.op)]} {_fill_operand(e.right, env)}"
    if isinstance(e, ast.UnaryOp):
        return f"-{_fill_operand(e.operand, env)}"
    if isinstance(e, ast.Call):
        return f"{e.func.id}({', '.join(_fill(a, env) for a in e.args)})"
    return ast.unparse(e)


def _fill_operand(e: ast.expr, env: dict) -> str:
    s = _fill(e, env)
    return f"({s})" if isinstance(e, ast.BinOp) else s


def format_value(x) -> str:
    """A number as a person writes it: whole numbers without ".0", others with at most 6 decimals."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if math.isfinite(x) and x == round(x) and abs(x) < 1e15:
        return str(int(round(x)))
    return f"{x:.6f}".rstrip("0").rstrip(".")


def significant_digits(x) -> int:
    """Digits a person must carry to compute with x (ignoring leading/trailing zeros)."""
    s = format_value(abs(x)).replace(".", "").lstrip("0").rstrip("0")
    return max(1, len(s))
