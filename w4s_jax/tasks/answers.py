"""Answer extraction and scorers shared by the benchmarks: numbers, MATH expressions, DROP spans, option letters.

Every scorer accepts what a workflow returns, `{"answer": ...}`, or the bare answer, and returns a float in
[0, 1]. None of them raises on a malformed prediction: it scores 0.
"""
from __future__ import annotations

import math
import re
import string
import threading
from typing import Any

# ----------------------------------------------------------------------------------------- predictions

def answer_of(prediction: Any) -> Any:
    """The answer inside a workflow's return value: `prediction["answer"]` for a dict, else the value itself."""
    if isinstance(prediction, dict):
        return prediction.get("answer")
    return prediction


# ----------------------------------------------------------------------------------------- numbers

def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`) in `text`, braces balanced; None if there is none."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
    return None


_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_NUMBER_TOKEN = re.compile(
    r"(?P<frac>(?P<fsign>-\s*)?\\[dt]?frac\s*\{\s*(?P<fn>-?\s*(?:" + _DIGITS + r"))\s*\}\s*\{\s*(?P<fd>-?\s*(?:" + _DIGITS + r"))\s*\})"
    r"|(?P<slash>(?P<sn>-?(?:" + _DIGITS + r"))\s*/\s*(?P<sd>" + _DIGITS + r"))(?![\d/])"
    r"|(?P<num>-?(?:" + _DIGITS + r")(?:[eE][-+]?\d+)?)")
_ANSWER_CUE = re.compile(r"answer\s*(?:is|was|would be|=|:)\s*", re.IGNORECASE)
_GROUPED_SPACES = re.compile(r"^-?\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:\.\d+)?$")
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d{1,2}$")


def _clean_number_text(text: str) -> str:
    text = text.replace("\u2212", "-").replace("\u2013", "-")   # unicode minus and en dash
    text = text.replace("{,}", ",").replace("\\!", "").replace("\\,", "").replace("\\%", "%")
    text = re.sub(r"\\(?:text|mathrm|textbf|mbox)\s*\{([^{}]*)\}", r"\1", text)
    text = text.replace("\\$", "").replace("$", "")
    for sign in ("€", "£", "¥", "₹", "¢"):
        text = text.replace(sign, "")
    return text


def _to_float(token: str) -> float:
    return float(token.replace(",", "").replace(" ", ""))


def parse_number(prediction: Any) -> tuple[float, int] | None:
    """The number a prediction states and how many decimals it was written with; None if it states none.

    Handles thousands separators, currency and units around the number, `\\boxed{}`, fractions (`3/4`,
    `\\frac{3}{4}`), a number inside a sentence (the first one after "answer is", else the last one).
    """
    value = answer_of(prediction)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return (float(value), 0) if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return parse_number(value[0]) if len(value) == 1 else None
    text = str(value)
    boxed = last_boxed(text)
    if boxed is not None:
        text = boxed
    text = _clean_number_text(text).strip().rstrip(".")
    if _GROUPED_SPACES.match(text):               # "1 000 000" written with spaces as thousands separators
        text = re.sub(r"[ \u00a0\u202f]", "", text)
    if _DECIMAL_COMMA.match(text):                # "12,5": a decimal comma, not a thousands separator
        text = text.replace(",", ".")
    cues = list(_ANSWER_CUE.finditer(text))
    tail = text[cues[-1].end():] if cues else text
    matches = list(_NUMBER_TOKEN.finditer(tail))
    if not matches:
        return None
    m = matches[0] if cues else matches[-1]
    try:
        if m.group("frac") or m.group("slash"):
            num, den = (m.group("fn"), m.group("fd")) if m.group("frac") else (m.group("sn"), m.group("sd"))
            den_value = _to_float(den)
            if den_value == 0:
                return None
            sign = -1.0 if m.group("frac") and m.group("fsign") else 1.0
            return sign * _to_float(num) / den_value, 99      # exact fraction: compare by value
        token = m.group("num")
        mantissa = token.lower().split("e")[0]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa and "e" not in token.lower() else 0
        number = _to_float(token)
    except (ValueError, OverflowError):
        return None
    return (number, decimals) if math.isfinite(number) else None


def numbers_match(predicted: float, decimals: int, target: float) -> bool:
    """Equal up to float noise, or the target rounded to the decimals the prediction shows (two or more:
    "0.33" states 1/3, "0.3" does not; "14053029.67" states 14053029.666..., "14053030" does not)."""
    if math.isclose(predicted, target, rel_tol=1e-9, abs_tol=1e-9):
        return True
    if 2 <= decimals < 99:
        return math.isclose(round(target, decimals), predicted, rel_tol=0, abs_tol=10 ** -(decimals + 3))
    return False


NO_ANSWER = "None"   # GSM-Plus "critical thinking" items: the question lacks what is needed to answer
_NO_ANSWER_FORMS = {"none", "null", "n/a", "no answer", "not enough information", "insufficient information",
                    "cannot be determined", "can't be determined", "undetermined", "unknown"}


def score_number(prediction: Any, target: Any) -> float:
    """1.0 when the prediction states the target number (see `parse_number`, `numbers_match`), else 0.0.

    A target of "None" (no answer exists) is matched by a prediction that says so.
    """
    if isinstance(target, str) and target.strip() == NO_ANSWER:
        said = answer_of(prediction)
        text = " ".join(str(said).lower().split()).strip(" .!") if said is not None else ""
        return 1.0 if text in _NO_ANSWER_FORMS else 0.0
    parsed = parse_number(prediction)
    if parsed is None:
        return 0.0
    return 1.0 if numbers_match(parsed[0], parsed[1], float(target)) else 0.0


def parse_target_number(raw: Any) -> int | float:
    """A reference answer as a number (int when whole): "1,000", "$5", "-3.5", "50%", "3/4"; raises ValueError
    for anything else."""
    if isinstance(raw, bool):
        raise ValueError(f"unparsable target {raw!r}")
    if isinstance(raw, (int, float)):
        value = float(raw)
    else:
        text = _clean_number_text(str(raw)).strip().removesuffix("%").strip()
        fraction = re.fullmatch(r"(-?(?:" + _DIGITS + r"))\s*/\s*(" + _DIGITS + r")", text)
        if fraction and _to_float(fraction.group(2)) != 0:
            value = _to_float(fraction.group(1)) / _to_float(fraction.group(2))
        elif re.fullmatch(r"-?(?:" + _DIGITS + r")(?:[eE][-+]?\d+)?", text):
            value = _to_float(text)
        else:
            raise ValueError(f"unparsable target {raw!r}")
    if not math.isfinite(value):
        raise ValueError(f"unparsable target {raw!r}")
    return int(value) if value == int(value) and abs(value) < 2 ** 53 else value


# ----------------------------------------------------------------------------------------- MATH

def math_reference_answer(solution: str) -> str | None:
    """The final answer of a MATH solution: the content of its last `\\boxed{}`."""
    boxed = last_boxed(solution)
    return boxed.strip() if boxed is not None and boxed.strip() else None


def score_math(prediction: Any, reference: str) -> float:
    """1.0 when the prediction is mathematically equivalent to the reference answer (math-verify)."""
    from math_verify import parse, verify   # imported here: sympy and the LaTeX parser load slowly

    value = answer_of(prediction)
    if value is None or isinstance(value, bool):
        return 0.0
    text = str(value).strip()
    if not text:
        return 0.0
    # math-verify times out with SIGALRM, which only the main thread may use; elsewhere run without it.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    gold = parse("\\boxed{" + reference + "}", parsing_timeout=timeout)
    if not gold:
        return 0.0
    if "\\boxed" in text or "$" in text:
        candidates = [text]
    else:   # a bare answer, as the answer format asks: read it as LaTeX first
        candidates = ["$" + text + "$", text]
    for candidate in candidates:
        parsed = parse(candidate, parsing_timeout=timeout)
        if parsed:
            return 1.0 if verify(gold, parsed, timeout_seconds=timeout) else 0.0
    return 0.0


# ----------------------------------------------------------------------------------------- DROP

def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _normalize_token(token: str) -> str:
    token = token.lower()
    if not _is_number(token):
        token = "".join(ch for ch in token if ch not in string.punctuation)
    if _is_number(token):
        token = str(float(token))
    token = re.sub(r"\b(a|an|the)\b", " ", token)
    return " ".join(token.split())


def drop_normalize(text: str) -> str:
    """DROP answer normalisation (as simple-evals/ADAS): lower case, punctuation and articles removed,
    numbers in one form ("2.0" == "2"), tokens split on spaces and hyphens."""
    parts = (_normalize_token(t) for t in re.split(r" |-", str(text)))
    return " ".join(p for p in parts if p.strip()).strip()


def _bags(answer: Any) -> list[set[str]]:
    spans = list(answer) if isinstance(answer, (list, tuple)) else [answer]
    return [set(drop_normalize(s).split()) for s in spans]


def _bag_f1(predicted: set[str], gold: set[str]) -> float:
    gold_numbers = {w for w in gold if _is_number(w)}
    if gold_numbers and not gold_numbers & {w for w in predicted if _is_number(w)}:
        return 0.0   # a number answer with none of the right numbers gets no credit for shared words
    common = len(gold & predicted)
    precision = common / len(predicted) if predicted else 1.0
    recall = common / len(gold) if gold else 1.0
    if precision == 0.0 and recall == 0.0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _best_assignment(scores: list[list[float]]) -> float:
    """Largest total score of a one-to-one matching of rows to columns (exact; spans are few)."""
    rows, cols = len(scores), len(scores[0]) if scores else 0
    if rows > cols:
        scores = [list(c) for c in zip(*scores)]
        rows, cols = cols, rows
    best: dict[int, float] = {0: 0.0}     # mask of used columns -> best total so far
    for r in range(rows):
        nxt: dict[int, float] = {}
        for mask, total in best.items():
            for c in range(cols):
                if not mask & (1 << c):
                    key, val = mask | (1 << c), total + scores[r][c]
                    if val > nxt.get(key, -1.0):
                        nxt[key] = val
        best = nxt
    return max(best.values()) if best else 0.0


def drop_f1_single(prediction: Any, reference: Any) -> float:
    """Token F1 between a prediction and one reference; several spans are matched one to one (bags aligned),
    unmatched spans count 0, and the mean is over the larger number of spans. Rounded to 2 decimals."""
    pred_bags, gold_bags = _bags(prediction), _bags(reference)
    scores = [[_bag_f1(p, g) for p in pred_bags] for g in gold_bags]
    return round(_best_assignment(scores) / max(len(pred_bags), len(gold_bags)), 2)


def score_drop(prediction: Any, references: list) -> float:
    """DROP F1: the best over the references (alternatives); a prediction may be one span or a list of spans."""
    value = answer_of(prediction)
    if value is None or isinstance(value, bool):
        return 0.0
    if not isinstance(value, (list, tuple)):
        value = str(value)
    refs = [r for r in references if (r if isinstance(r, (list, tuple)) else str(r).strip())]
    return max((drop_f1_single(value, r) for r in refs), default=0.0)


# ----------------------------------------------------------------------------------------- option letters

LETTERS = "ABCDEFGHIJ"


def extract_choice(prediction: Any, options: list[str] | None = None, n_options: int | None = None) -> str | None:
    """The option letter a prediction picks ("C", "(C)", "C) ...", "The answer is (C)", "Answer: C"), or the
    letter of the option whose text it repeats exactly; None when it picks none clearly."""
    n = n_options or (len(options) if options else len(LETTERS))
    valid = LETTERS[:n]
    value = answer_of(prediction)
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    letter = f"[{valid}{valid.lower()}]"
    whole = re.fullmatch(r"[\(\[*\s]*(" + letter + r")[\)\]*\s.:]*", text)
    if whole:
        return whole.group(1).upper()
    cued = re.findall(r"(?i:answer)(?:\s*(?i:is))?\s*:?\s*(?:(?i:option)\s*)?[*\s]*[\(\[]?(" + f"[{valid}]"
                      + r")(?![A-Za-z0-9])", text)
    if cued:
        return cued[-1].upper()
    bracketed = re.findall(r"\((" + f"[{valid}]" + r")\)", text)
    if bracketed:
        return bracketed[-1]
    leading = re.match(r"[\(\[]?(" + f"[{valid}]" + r")[\)\].:]\s", text + " ")
    if leading:
        return leading.group(1)
    option = re.search(r"\b(?i:option)\s+(" + f"[{valid}]" + r")\b", text)
    if option:
        return option.group(1).upper()
    if options:
        said = " ".join(text.lower().split()).rstrip(".")
        hits = [LETTERS[i] for i, o in enumerate(options) if " ".join(str(o).lower().split()).rstrip(".") == said]
        if len(hits) == 1:
            return hits[0]
    return None


def score_choice(prediction: Any, letter: str, options: list[str] | None = None) -> float:
    return 1.0 if extract_choice(prediction, options) == letter else 0.0
