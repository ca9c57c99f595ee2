"""Synthetic tasks of the embedded default, generated from a seed: `synth_arith` and `synth_units`.

- `synth_arith`: multi-step arithmetic word problems. Someone's count of objects changes through a chain
  of events (finding some, giving some away, buying packs, doubling, sharing equally); the question asks
  for the final count, a whole number. Difficulty is the number of arithmetic operations (1 to 8, evenly
  spread); a third of the items use large numbers (4 to 6 digits), which strain mental arithmetic.
- `synth_units`: unit conversions with a few steps of arithmetic around them (lengths, masses, volumes,
  durations; metric, US customary and time units); the answer is a decimal number rounded to two places.
  Difficulty is again the number of operations (1 to 6).

Both families are different enough (story arithmetic vs conversion factors, integers vs rounded
decimals, different fitting expert roles) that a workflow tuned on one can be tested for transfer to the
other. Every item carries its reference solution as a straight-line Python `solution()` in
`item.meta["code"]` (the GSM-Hard convention) together with `meta["steps"]` and `meta["family"]`; the
simulated executor (`w4s_jax.sim`) reads them, a workflow never sees them.

Splits (fixed sizes, disjoint, deterministic on every machine: `random.Random` seeded with an integer):
train 1000 items (RLAO collection), valid 128 (what optimisation sees), test 500 (scored once).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from .answers import score_number
from .base import Item, SplitTask
from .workflows import seed_workflows

SPLIT_SIZES = {"train": 1000, "valid": 128, "test": 500}
# Answers stay below this, so that an answer off by one (or by 0.01) differs from the right one by more
# than the relative tolerance (1e-9) of the number scorer.
MAX_ANSWER = 10 ** 7
DEFAULT_SEED = 0

def score_synthetic(prediction, item: Item) -> float:
    """The benchmarks' number scorer (w4s_jax/tasks/answers.py): "20", "20.0", "The answer is 20" all score."""
    return score_number(prediction, item.answer)


# --------------------------------------------------------------------------------------------------------
# A problem under construction: the story sentences and the straight-line solution, built together.

@dataclass
class _Problem:
    sentences: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)   # body of solution()
    ops: int = 0

    def assign(self, name: str, expr: str, ops: int = 0) -> None:
        self.lines.append(f"    {name} = {expr}")
        self.ops += ops

    def code(self, result: str) -> str:
        return "def solution():\n" + "\n".join(self.lines) + f"\n    return {result}\n"


# --------------------------------------------------------------------------------------------------------
# synth_arith

_NAMES = [("Mara", "she", "her"), ("Tomas", "he", "his"), ("Ines", "she", "her"), ("Kofi", "he", "his"),
          ("Lena", "she", "her"), ("Ravi", "he", "his"), ("Yuki", "she", "her"), ("Omar", "he", "his"),
          ("Priya", "she", "her"), ("Jonas", "he", "his"), ("Amara", "she", "her"), ("Diego", "he", "his")]
_NOUNS = ["marbles", "stickers", "stamps", "shells", "beads", "cards", "coins", "seeds", "buttons", "pebbles",
          "tickets", "bolts"]
_CONTAINERS = [("packs", "pack"), ("boxes", "box"), ("bags", "bag"), ("jars", "jar"), ("crates", "crate")]
_MULT_WORDS = {2: "doubles", 3: "triples", 4: "quadruples"}


def _arith_problem(rng: random.Random, steps: int, heavy: bool) -> tuple[str, str, int, int]:
    name, subj, poss = rng.choice(_NAMES)
    noun = rng.choice(_NOUNS)
    var = noun
    small = (lambda lo, hi: rng.randint(lo, hi))
    big = (lambda lo, hi: rng.randint(1000 * lo, 1000 * hi + 999))
    num = big if heavy else small
    p = _Problem()
    value = num(10, 99)
    p.sentences.append(f"{name} has {value} {noun}.")
    p.assign(var, str(value))
    Subj = subj.capitalize()
    remaining = steps
    while remaining > 0:
        kinds = ["add", "sub", "mul", "div"] + (["packs_in", "packs_out"] if remaining >= 2 else [])
        kind = rng.choice(kinds)
        if kind == "add":
            x = num(2, 60)
            p.sentences.append(rng.choice([f"{Subj} finds {x} more {noun}.",
                                           f"A friend gives {name} {x} {noun}.",
                                           f"{Subj} wins {x} {noun} in a game."]))
            p.assign("gained", str(x))
            p.assign(var, f"{var} + gained", 1)
            value += x
        elif kind == "sub":
            if value < 4:
                continue
            x = rng.randint(1, max(1, value // 2))
            p.sentences.append(rng.choice([f"{Subj} gives {x} {noun} to a neighbour.",
                                           f"{Subj} loses {x} {noun}.",
                                           f"{Subj} trades away {x} of {poss} {noun}."]))
            p.assign("given", str(x))
            p.assign(var, f"{var} - given", 1)
            value -= x
        elif kind == "mul":
            k = rng.choice([2, 3, 4])
            p.sentences.append(rng.choice([f"Then the number of {noun} {subj} has {_MULT_WORDS[k]}.",
                                           f"After a good week {subj} has {k} times as many {noun} as before."]))
            p.assign(var, f"{var} * {k}", 1)
            value *= k
        elif kind == "div":
            divisors = [k for k in (2, 3, 4, 5) if value % k == 0 and value > k]
            if not divisors:
                continue
            k = rng.choice(divisors)
            p.sentences.append(f"{Subj} splits {poss} {noun} into {k} equal groups and keeps only one group.")
            p.assign(var, f"{var} // {k}", 1)
            value //= k
        else:
            container, single = rng.choice(_CONTAINERS)
            b = num(3, 25)
            if kind == "packs_out":
                if value < b:
                    continue
                a = rng.randint(1, min(9, value // b))
                p.sentences.append(f"{Subj} sells {a} {container} with {b} {noun} in each.")
                sign = "-"
                value -= a * b
            else:
                a = rng.randint(2, 9)
                p.sentences.append(f"{Subj} buys {a} {container} of {noun} with {b} in each.")
                sign = "+"
                value += a * b
            p.assign(container, str(a))
            p.assign(f"per_{single}", str(b))
            p.assign(var, f"{var} {sign} {container} * per_{single}", 2)
            remaining -= 1  # two operations
        remaining -= 1
    question = " ".join(p.sentences) + f" How many {noun} does {name} have now?"
    return question, p.code(var), value, p.ops


def _arith_item(rng: random.Random, split: str, k: int) -> Item:
    steps = rng.randint(1, 8)
    heavy = rng.random() < 1 / 3
    while True:
        question, code, answer, ops = _arith_problem(rng, steps, heavy)
        if abs(answer) < MAX_ANSWER:
            break
    return Item(id=f"synth_arith/{split}/{k}", question=question, answer=answer,
                meta={"code": code, "steps": ops, "family": "arith", "heavy": heavy})


# --------------------------------------------------------------------------------------------------------
# synth_units: unit -> (size in the dimension's base unit, singular, plural)

_UNITS = {
    "length": {"mm": (0.001, "millimetre", "millimetres"), "cm": (0.01, "centimetre", "centimetres"),
               "m": (1.0, "metre", "metres"), "km": (1000.0, "kilometre", "kilometres"),
               "in": (0.0254, "inch", "inches"), "ft": (0.3048, "foot", "feet"),
               "yd": (0.9144, "yard", "yards"), "mi": (1609.344, "mile", "miles")},
    "mass": {"g": (0.001, "gram", "grams"), "kg": (1.0, "kilogram", "kilograms"),
             "oz": (0.028349523125, "ounce", "ounces"), "lb": (0.45359237, "pound", "pounds")},
    "volume": {"ml": (0.001, "millilitre", "millilitres"), "l": (1.0, "litre", "litres"),
               "cup": (0.2365882365, "cup", "cups"), "qt": (0.946352946, "quart", "quarts"),
               "gal": (3.785411784, "gallon", "gallons")},
    "time": {"s": (1.0, "second", "seconds"), "min": (60.0, "minute", "minutes"), "h": (3600.0, "hour", "hours"),
             "day": (86400.0, "day", "days")},
}
_BASE = {"length": "m", "mass": "kg", "volume": "l", "time": "s"}
_SCENES = {
    "length": [("A cyclist rides {q} {u} every day", "rides", "ride"),
               ("A rope maker cuts pieces of {q} {u}", "cuts", "cut"),
               ("A runner covers {q} {u} on each training run", "covers", "cover")],
    "mass": [("A baker uses {q} {u} of flour for each batch", "uses", "use"),
             ("A crate of apples weighs {q} {u}", "ships", "ship"),
             ("A farmer harvests {q} {u} of beans from each row", "harvests", "harvest")],
    "volume": [("A tank is filled with {q} {u} of water each morning", "fills", "fill"),
               ("A cafe serves {q} {u} of juice per table", "serves", "serve"),
               ("A garden hose delivers {q} {u} per minute of watering", "delivers", "deliver")],
    "time": [("A machine runs for {q} {u} per job", "runs", "run"),
             ("A student practises for {q} {u} each session", "practises", "practise"),
             ("A bus ride takes {q} {u}", "takes", "take")],
}


def _fmt_qty(x: float) -> str:
    return f"{x:g}"


def _units_problem(rng: random.Random, steps: int) -> tuple[str, str, float, int]:
    dim = rng.choice(sorted(_UNITS))
    units = _UNITS[dim]
    src, dst = rng.sample(sorted(units), 2)
    # A conversion through the base unit costs one operation per non-base end.
    conv_ops = (src != _BASE[dim]) + (dst != _BASE[dim])
    while conv_ops > steps:
        src, dst = rng.sample(sorted(units), 2)
        conv_ops = (src != _BASE[dim]) + (dst != _BASE[dim])
    q = round(rng.uniform(1.5, 95.0), rng.choice([1, 2]))
    scene, verb3, _verb = rng.choice(_SCENES[dim])
    p = _Problem()
    p.sentences.append(scene.format(q=_fmt_qty(q), u=units[src][2] if q != 1 else units[src][1]) + ".")
    src_var = f"amount_{src}"
    p.assign(src_var, repr(q))
    value = q
    extra = steps - conv_ops
    while extra > 0:
        kind = rng.choice(["times", "plus", "minus"])
        if kind == "times":
            k = rng.randint(2, 12)
            p.sentences.append(rng.choice([f"This happens {k} times.", f"It is repeated on {k} days."]))
            p.assign("count", str(k))
            p.assign(src_var, f"{src_var} * count", 1)
            value = value * k
            extra -= 1
        elif kind == "plus" and extra >= 2:
            # An extra amount in another unit: converted to the source unit first (two operations).
            other = rng.choice([u for u in sorted(units) if u != src])
            x = round(rng.uniform(1.0, 50.0), 1)
            p.sentences.append(f"On top of that, another {_fmt_qty(x)} {units[other][2]} are added.")
            ov = f"extra_{other}"
            p.assign(ov, repr(x))
            p.assign(f"{src}_per_{other}", repr(units[other][0] / units[src][0]))
            p.assign(src_var, f"{src_var} + {ov} * {src}_per_{other}", 2)
            value = value + x * (units[other][0] / units[src][0])
            extra -= 2
        elif kind == "minus" and value > 2:
            x = round(rng.uniform(0.1, value / 2), 1)
            if x <= 0:
                continue
            p.sentences.append(f"Then {_fmt_qty(x)} {units[src][2]} are lost.")
            p.assign("lost", repr(x))
            p.assign(src_var, f"{src_var} - lost", 1)
            value = value - x
            extra -= 1
    base = _BASE[dim]
    cur = src_var
    if src != base:
        p.assign(f"{base}_per_{src}", repr(units[src][0]))
        p.assign(f"amount_{base}", f"{cur} * {base}_per_{src}", 1)
        value = value * units[src][0]
        cur = f"amount_{base}"
    if dst != base:
        p.assign(f"{base}_per_{dst}", repr(units[dst][0]))
        p.assign(f"amount_{dst}", f"{cur} / {base}_per_{dst}", 1)
        value = value / units[dst][0]
        cur = f"amount_{dst}"
    p.sentences.append(f"How many {units[dst][2]} is that in total? Round to two decimal places.")
    return " ".join(p.sentences), p.code(f"round({cur}, 2)"), round(value, 2), p.ops


def _units_item(rng: random.Random, split: str, k: int) -> Item:
    steps = rng.randint(1, 6)
    while True:
        question, code, answer, ops = _units_problem(rng, steps)
        if abs(answer) < MAX_ANSWER:
            break
    return Item(id=f"synth_units/{split}/{k}", question=question, answer=answer,
                meta={"code": code, "steps": ops, "family": "units"})


# --------------------------------------------------------------------------------------------------------
# Tasks

ARITH_DESCRIPTION = (
    "Multi-step arithmetic word problems. A person's collection of objects changes through a chain of "
    "events (finding or winning some, giving some away, buying or selling packs, doubling, sharing out "
    "equally), and the question asks how many objects they have at the end. Problems take 1 to 8 "
    "operations and some use numbers with several digits. The answer is a whole number, given as plain "
    "digits without units.\n"
    "Example: \"Lena has 12 shells. She buys 3 bags of shells with 5 in each. She gives 7 shells to a "
    "neighbour. How many shells does Lena have now?\" 12 + 3 * 5 = 27, 27 - 7 = 20, so the answer is 20.")

UNITS_DESCRIPTION = (
    "Unit conversion problems: an amount of length, mass, volume or time, sometimes repeated, increased "
    "or reduced, is converted into another unit (metric, US customary, or time units). Problems take 1 to "
    "6 operations. The answer is a decimal number in the requested unit, rounded to two decimal places, "
    "given as plain digits without the unit.\n"
    "Example: \"A runner covers 3 miles on each training run. This happens 2 times. How many kilometres is "
    "that in total? Round to two decimal places.\" 3 * 2 = 6 miles, 6 * 1609.344 = 9656.064 m, "
    "/ 1000 = 9.656064 km, so the answer is 9.66.")

ARITH_ANSWER_FORMAT = "The final answer must be a whole number written with digits only (no units, no words)."
UNITS_ANSWER_FORMAT = ("The final answer must be a number in the requested unit, rounded to two decimal places, "
                       "written with digits only (no units, no words).")
ARITH_ROLE = "math word problem solver"
UNITS_ROLE = "unit conversion expert"


def _splits(make, family: str, seed: int) -> dict[str, list[Item]]:
    rng = random.Random(seed * 1_000_003 + {"arith": 1, "units": 2}[family])
    seen: set[str] = set()
    out: dict[str, list[Item]] = {}
    for split in ("test", "valid", "train"):   # test first: its items do not move if train grows
        items: list[Item] = []
        while len(items) < SPLIT_SIZES[split]:
            it = make(rng, split, len(items))
            if it.question in seen:
                continue
            seen.add(it.question)
            items.append(it)
        out[split] = items
    return {s: out[s] for s in ("train", "valid", "test")}


def synth_arith(data_dir: str | None = None, *, seed: int = DEFAULT_SEED) -> SplitTask:
    """The registry's factory (data_dir is unused: everything is generated)."""
    return SplitTask(name="synth_arith", description=ARITH_DESCRIPTION, splits=_splits(_arith_item, "arith", seed),
                     scorer=score_synthetic, workflows=seed_workflows(ARITH_ANSWER_FORMAT, role=ARITH_ROLE, code=True),
                     source={"generator": "w4s_jax.tasks.synthetic", "seed": seed})


def synth_units(data_dir: str | None = None, *, seed: int = DEFAULT_SEED) -> SplitTask:
    return SplitTask(name="synth_units", description=UNITS_DESCRIPTION, splits=_splits(_units_item, "units", seed),
                     scorer=score_synthetic, workflows=seed_workflows(UNITS_ANSWER_FORMAT, role=UNITS_ROLE, code=True),
                     source={"generator": "w4s_jax.tasks.synthetic", "seed": seed})
