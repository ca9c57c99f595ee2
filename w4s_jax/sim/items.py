"""What the simulated model knows about a task's items, and how it finds the item a request is about.

`ItemProfile` holds, per item: the reference answer as the model states it, the difficulty (number of
arithmetic operations), the arithmetic load (digits carried), three plausible wrong answers (distractors)
and, when the item has a straight-line reference solution, the program behind each answer (its steps are
the reasoning of a reply, its source the code of a code reply). Profiles are built on first use.

`ItemIndex` recognises an item from the text of a request: every 4-word window of each question that
belongs to that question alone is indexed; the item most covered by the request's windows wins (the one
quoted last when several are quoted in full, e.g. a worked example before the actual question).
"""
from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass, field

from .program import NotStraightLine, Program, significant_digits

N_DISTRACTORS = 3
_WORD = re.compile(r"\w+")
_LETTER = re.compile(r"^\s*\(?([A-Ja-j])\)?\s*$")


def answer_kind(answer) -> str:
    if isinstance(answer, bool):
        return "text"
    if isinstance(answer, (int, float)):
        return "number"
    s = str(answer).strip()
    if _LETTER.match(s):
        return "choice"
    try:
        float(s.replace(",", ""))
        return "number"
    except ValueError:
        return "text"


def _number(answer) -> int | float:
    x = answer if isinstance(answer, (int, float)) else float(str(answer).replace(",", ""))
    return int(round(x)) if float(x) == round(float(x)) and abs(x) < 1e15 else float(x)


def same_value(a, b) -> bool:
    """Equal as answers: numbers by value (up to float noise), anything else by trimmed lower-case text."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return str(a).strip().lower() == str(b).strip().lower()


@dataclass
class ItemProfile:
    index: int
    id: str
    question: str
    kind: str                    # "number" | "choice" | "text"
    family: str                  # "arith" | "units" | "math" | "choice" | "text": selects the parameters
    answer: object
    steps: int                   # arithmetic operations of the solution (difficulty), >= 1
    load: float                  # arithmetic load in [0, 1]: digits carried, (max significant digits - 2) / 4
    distractors: list = field(default_factory=list)
    programs: list = field(default_factory=list)   # Program | None for the answer, then each distractor
    explained: dict = field(default_factory=dict)  # render's cache: reasoning lines and code per outcome

    def value(self, outcome: int):
        """Outcome 0 is the right answer, k >= 1 the k-th distractor."""
        return self.answer if outcome == 0 else self.distractors[outcome - 1]

    def outcome_of(self, value) -> int | None:
        """Which outcome a stated value is (0 right, k distractor k), None for anything else."""
        for k, v in enumerate([self.answer, *self.distractors]):
            if same_value(v, value):
                return k
        return None


def _seeded(*parts) -> random.Random:
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(h, "big"))


def build_profile(index: int, item, seed: int) -> ItemProfile:
    kind = answer_kind(item.answer)
    meta = getattr(item, "meta", None) or {}
    rng = _seeded("distractors", seed, item.id)
    question = str(item.question)
    if kind == "number":
        answer = _number(item.answer)
        family = meta.get("family") or "math"
        prog = None
        if isinstance(meta.get("code"), str):
            try:
                prog = Program.parse(meta["code"])
                if not same_value(_number(prog.run()), answer):
                    prog = None      # the reference code disagrees with the reference answer: do not use it
            except (NotStraightLine, ArithmeticError, TypeError, ValueError):
                prog = None
        if prog is not None:
            values = [v for _, v in prog.trace()]
            digits = max(significant_digits(v) for v in [*prog.constants(), *values])
            steps = meta.get("steps") or prog.n_ops
        else:
            numbers = [float(x.replace(",", "")) for x in re.findall(r"\d[\d,]*(?:\.\d+)?", question)]
            digits = max([significant_digits(x) for x in numbers] + [significant_digits(answer)])
            steps = meta.get("steps") or max(1, len(numbers) - 1)
        load = min(1.0, max(0.0, (digits - 2) / 4))
        distractors, programs = _number_distractors(answer, prog, rng)
    elif kind == "choice":
        answer = _LETTER.match(str(item.answer)).group(1).upper()
        letters = sorted(set(re.findall(r"\(([A-J])\)", question)) | set("ABCD"))
        others = [x for x in letters if x != answer]
        rng.shuffle(others)
        distractors, programs = others[:N_DISTRACTORS], [None] * (N_DISTRACTORS + 1)
        family, steps, load = meta.get("family") or "choice", int(meta.get("steps") or 2), 0.0
    else:
        answer = str(item.answer)
        distractors = ["I am not sure", "none of these", "it cannot be determined"]
        programs = [None] * (N_DISTRACTORS + 1)
        family, steps, load = meta.get("family") or "text", int(meta.get("steps") or 2), 0.0
    return ItemProfile(index=index, id=str(item.id), question=question, kind=kind, family=family, answer=answer,
                       steps=max(1, int(steps)), load=load, distractors=distractors, programs=programs)


def _number_distractors(answer, prog: Program | None, rng: random.Random):
    chosen, programs = [], [prog]

    def fresh(v) -> bool:
        return not same_value(v, answer) and not any(same_value(v, c) for c in chosen)

    if prog is not None:
        for _kind, mutant in prog.mutations(rng):
            if len(chosen) == N_DISTRACTORS:
                break
            try:
                v = _number(mutant.run())
            except (NotStraightLine, ArithmeticError, TypeError, ValueError, OverflowError):
                continue
            if fresh(v):
                chosen.append(v)
                programs.append(mutant)
    pool = [answer + 1, answer - 1, answer * 2, answer + 10, answer * 10, -answer]
    if isinstance(answer, float):
        pool = [round(x, 2) for x in pool]
    else:
        pool.append(answer // 2)
    rng.shuffle(pool)
    for v in pool:
        if len(chosen) == N_DISTRACTORS:
            break
        if fresh(v):
            chosen.append(v)
            programs.append(None)
    return chosen, programs


def _grams(text: str) -> list[tuple]:
    words = _WORD.findall(text.lower())
    return list(zip(words, words[1:], words[2:], words[3:]))


class ItemIndex:
    """Items of a task, profiled lazily, and found from the text of a request."""

    def __init__(self, items, seed: int = 0):
        self.items = list(items)
        self.seed = seed
        self._profiles: dict[int, ItemProfile] = {}
        owner: dict[tuple, int] = {}
        for i, it in enumerate(self.items):
            for g in set(_grams(str(it.question))):
                owner[g] = i if owner.get(g, i) == i else -1
        self._owner = {g: i for g, i in owner.items() if i >= 0}
        self._size = [0] * len(self.items)
        for i in self._owner.values():
            self._size[i] += 1
        self._exact = {" ".join(_WORD.findall(str(it.question).lower())): i for i, it in enumerate(self.items)}
        self._lines = {str(it.question).strip(): i for i, it in enumerate(self.items) if "\n" not in str(it.question)}
        self._found: dict[str, int | None] = {}

    def __len__(self) -> int:
        return len(self.items)

    def profile(self, i: int) -> ItemProfile:
        p = self._profiles.get(i)
        if p is None:
            p = self._profiles[i] = build_profile(i, self.items[i], self.seed)
        return p

    def find(self, text: str) -> ItemProfile | None:
        """The item the text is about, or None."""
        i = self._found.get(text, -1)
        if i == -1:
            i = self._locate(text)
            if len(self._found) > 100_000:
                self._found.clear()
            self._found[text] = i
        return None if i is None else self.profile(i)

    def _locate(self, text: str) -> int | None:
        # Fast path: a line that is a question, whole (how workflows usually quote the task); the last wins.
        found = None
        for line in text.splitlines():
            i = self._lines.get(line.strip())
            if i is not None:
                found = i
        if found is not None:
            return found
        hits: dict[int, int] = {}
        last: dict[int, int] = {}
        for pos, g in enumerate(_grams(text)):
            i = self._owner.get(g)
            if i is not None:
                hits[i] = hits.get(i, 0) + 1
                last[i] = pos
        if hits:
            cover = {i: h / self._size[i] for i, h in hits.items()}
            full = [i for i, c in cover.items() if c >= 0.9]
            if full:
                return max(full, key=lambda i: last[i])
            best = max(cover, key=lambda i: (cover[i], last[i]))
            if cover[best] >= 0.5:
                return best
        # Questions without words of their own (duplicates, very short ones): quoted whole.
        flat = " ".join(_WORD.findall(text.lower()))
        found = [(flat.rfind(q), i) for q, i in self._exact.items() if q and q in flat]
        return max(found)[1] if found else None
