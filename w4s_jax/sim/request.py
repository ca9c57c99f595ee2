"""Reading a chat request the way the simulated model does: which item, what kind of call, which technique.

Everything is read from the request itself (the messages, `temperature`, `n`, `response_format`), with
the item's question cut out first so that its own words ("steps", "number", "code") never count as
instructions. The `agent` API of the workflows writes its system prompt as "You are a helpful <role>.
Answer with a single JSON object whose keys are exactly: "k1", "k2". <instructions>"; other phrasings
of the same things are recognised too.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache

from .items import ItemIndex, ItemProfile

# Keys of a requested JSON object, by what they hold.
REASONING_KEY = re.compile(r"reason|think|thought|rational|explan|analy|step|work|plan|deriv|justif|scratch", re.I)
ANSWER_KEY = re.compile(r"answer|result|solution|final|output|value|prediction|response|number", re.I)
CODE_KEY = re.compile(r"code|program|python|script|implementation|function", re.I)
VERDICT_KEY = re.compile(r"correct|verdict|valid|approv|accept|judg|decision|pass|right|agree|ok$", re.I)
FEEDBACK_KEY = re.compile(r"feedback|critique|review|comment|issue|error|mistake|suggest", re.I)
EXPERT_KEY = re.compile(r"expert|role|persona|specialist|agent", re.I)

_KEYS_SENTENCE = re.compile(r"keys are exactly:\s*((?:\"(?:[^\"\\]|\\.)*\"\s*,?\s*)+)")


class _Phrase:
    """A regex over lower-cased text, tried only when one of its trigger substrings is there (most texts have
    none, and a substring test costs far less than a regex scan).

    `word_start`: every match must begin at a word boundary, as a leading `\\b` would say; the pattern is
    given without it and the boundary is checked here, because a leading `\\b` keeps `re` from skipping
    ahead to its possible first letters (a scan three times slower)."""

    def __init__(self, triggers: tuple[str, ...], pattern: str, *, word_start: bool = False):
        self.triggers = triggers
        self.rx = re.compile(pattern)
        self.word_start = word_start

    def _matches(self, low: str):
        pos = 0
        while (m := self.rx.search(low, pos)) is not None:
            start = m.start()
            if not self.word_start or start == 0 or not (low[start - 1].isalnum() or low[start - 1] == "_"):
                yield m
                pos = m.end() if m.end() > start else start + 1
            else:
                pos = start + 1

    def search(self, low: str):
        if not any(t in low for t in self.triggers):
            return None
        return self.rx.search(low) if not self.word_start else next(self._matches(low), None)

    def findall(self, low: str) -> list:
        """As `re.findall`: the groups of every match (the one group, or a tuple of them)."""
        if not any(t in low for t in self.triggers):
            return []
        if not self.word_start:
            return self.rx.findall(low)
        groups = self.rx.groups
        return [m.group(0) if groups == 0 else m.groups("")[0] if groups == 1 else m.groups("")
                for m in self._matches(low)]


_REASONING_ASK = _Phrase(
    ("step", "think", "reason", "show", "explain", "chain", "work"),
    r"step[- ]by[- ]step|think (?:carefully|through|it through|step)|reason (?:through|carefully|step)|"
    r"show (?:your|the|all) (?:work|steps|reasoning|calculations)|explain your reasoning|chain[- ]of[- ]thought|"
    r"let'?s think|work (?:it )?out (?:each|every|the) step")
_CODE_ASK = _Phrase(("python", "code", "program", "def solution", "```"),
                    r"\bpython\b|\bcode\b|\bprogram\b|def solution|```")
_REVIEW_ASK = _Phrase(("verif", "review", "critique", "check", "correct", "evaluate"),
                      r"(?:verify|review|critique|check (?:whether|if|the)|double-check|is (?:it|this|the "
                      r"(?:answer|solution)) correct|evaluate the (?:answer|solution))\b", word_start=True)
_ROLE = _Phrase(("you are", "act as"),
                r"you are (?:an? |the )?([^.\n]{1,120})|act as (?:an? |the )?([^.\n]{1,120})", word_start=True)
_FORMAT = {
    "number": _Phrase(("digit", "numer", "integer", "whole number", "decimal", "number", "unit", "format"),
                      r"\bdigits?\b|\bnumeric(?:al)?\b|\binteger\b|\bwhole number\b|\bdecimal places?\b|"
                      r"\bplain number\b|\bnumber only\b|\bonly the (?:final )?number\b|\bjust the (?:final )?number\b|"
                      r"\bas a (?:single )?number\b|\bno units\b|\bwithout (?:the )?units?\b|<number>|\bformat\b"),
    "choice": _Phrase(("letter", "option", ")", "format"), r"\bletter\b|\boption\b|\(a\)|\bformat\b"),
    "text": _Phrase(("only", "concise", "short", "exactly"), r"\bonly\b|\bconcise\b|\bshort\b|\bexactly\b"),
}

# A stated answer: "answer: 42", "answered: 42", "Proposed answer:\n42", '"answer": "42"', "result 42".
_NUM = r"-?\$?\d[\d,]*(?:\.\d+)?"
_MENTION_NUMBER = _Phrase(("answer", "result"), r"(?:final answer|answer(?:ed)?|result)\b['\"]?\s*"
                                                r"(?:is|was|would be|of|=|:)?\s*['\"]?\s*(" + _NUM + r")",
                          word_start=True)
_MENTION_LETTER = re.compile(r"\b(?:[Ff]inal [Aa]nswer|[Aa]nswer(?:ed)?|[Rr]esult|[Oo]ption|[Cc]hoice)\b['\"]?\s*"
                             r"(?:is|was|=|:)?\s*['\"]?\s*\(?([A-J])\)?(?![\w])")
_MENTION_TEXT = _Phrase(("answer",),
                        r"(?:final answer|answer(?:ed)?)\b['\"]?\s*(?:is|was|=|:)\s*['\"]?([^\n\"']{1,80})",
                        word_start=True)
_CORRECTED = _Phrase(("corrected",), r"\bcorrected\b")
_NEGATIVE = _Phrase(("not ", "incorrect", "wrong", "mistake", "error in", "false"),
                    r"\b(?:is|was|are|were) (?:not correct|not right|incorrect|wrong)\b|\bmistakes?\b|"
                    r"\berror in\b|correct[\"']?\s*:\s*[\"']?false")
_POSITIVE = _Phrase(("correct", "right", "check"),
                    r"\b(?:is|was|looks) (?:correct|right)\b|\bchecks? out\b|correct[\"']?\s*:\s*[\"']?true")


@dataclass(frozen=True)
class Keys:
    """The keys of a requested JSON object and what each holds: answer, code, verdict, expert, feedback,
    reasoning or other."""
    names: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    answer: str | None = None
    code: str | None = None
    verdict: str | None = None
    feedback: str | None = None
    expert: str | None = None
    reasoning: bool = False

    @classmethod
    def of(cls, names: tuple[str, ...]) -> "Keys":
        def first(pattern):
            return next((k for k in names if pattern.search(k)), None)
        answer = first(ANSWER_KEY)
        if answer is None:
            rest = [k for k in names if not (REASONING_KEY.search(k) or CODE_KEY.search(k) or VERDICT_KEY.search(k)
                                             or FEEDBACK_KEY.search(k) or EXPERT_KEY.search(k))]
            answer = rest[-1] if rest else None
        special = {"code": first(CODE_KEY), "answer": answer, "verdict": first(VERDICT_KEY),
                   "expert": first(EXPERT_KEY), "feedback": first(FEEDBACK_KEY)}

        def role(k):
            for r, key in special.items():
                if key == k:
                    return r
            return "reasoning" if (REASONING_KEY.search(k) or FEEDBACK_KEY.search(k)) else "other"
        return cls(names, tuple(role(k) for k in names), answer, special["code"], special["verdict"],
                   special["feedback"], special["expert"], any(REASONING_KEY.search(k) for k in names))


@dataclass
class Call:
    """One request, as the simulated model reads it."""
    item: ItemProfile | None
    kind: str                 # solve | code | review | revise | debate | route | unknown
    json_mode: bool
    keys: Keys
    temperature: float
    n: int
    reasoning: bool           # step-by-step reasoning was asked for
    role_fit: bool            # an expert role that fits the item's family
    format_ok: bool           # precise instructions about the answer's form
    shown: list = field(default_factory=list)     # answers shown in the request, in order
    verdict: bool | None = None                   # verdict of a review shown in the request
    experts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _SystemPrompt:
    """What a system prompt asks for: read once per distinct prompt (workflows reuse a few)."""
    keys: "Keys"
    reasoning: bool
    roles: tuple[str, ...]
    code: bool
    formats: tuple[str, ...]      # answer kinds whose form the prompt pins down


@lru_cache(maxsize=4096)
def _read_system(system: str, json_mode: bool) -> _SystemPrompt:
    keys = Keys.of(tuple(_requested_keys(system)) or ("answer",)) if json_mode else Keys()
    low = system.lower()
    return _SystemPrompt(keys, bool(_REASONING_ASK.search(low)), tuple(a or b for a, b in _ROLE.findall(low)),
                         bool(_CODE_ASK.search(low)), tuple(k for k, f in _FORMAT.items() if f.search(low)))


ROLE_WORDS = {
    "arith": ("math", "arithmetic", "mathematician", "accountant", "calculat", "number", "quantitative",
              "word problem", "algebra"),
    "math": ("math", "arithmetic", "mathematician", "accountant", "calculat", "number", "quantitative",
             "word problem", "algebra"),
    "units": ("unit", "conversion", "convert", "physic", "engineer", "metrolog", "measure", "scien", "metric"),
    "choice": ("expert", "specialist", "professor", "scientist", "scholar"),
    "text": ("expert", "specialist", "reader", "analyst"),
}


def role_fits(role_text: str, family: str) -> bool:
    t = role_text.lower()
    return any(w in t for w in ROLE_WORDS.get(family, ()))


def _requested_keys(system: str) -> list[str]:
    m = _KEYS_SENTENCE.search(system)
    if not m:
        return []
    try:
        return [str(k) for k in json.loads("[" + m.group(1).strip().rstrip(",") + "]")]
    except ValueError:
        return []


def _mentions(text: str, low: str, item: ItemProfile) -> list:
    if item.kind == "number":
        out = []
        for m in _MENTION_NUMBER.findall(low):
            try:
                x = float(m.replace(",", "").replace("$", ""))
            except ValueError:
                continue
            out.append(int(x) if x == int(x) and abs(x) < 1e15 else x)
        return out
    if item.kind == "choice":
        return [m.upper() for m in _MENTION_LETTER.findall(text)]
    return [m.strip() for m in _MENTION_TEXT.findall(low)]


def message_text(content) -> str:
    """The text of a message's content: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def analyse(body: dict, index: ItemIndex) -> Call:
    messages = body["messages"]
    system = "\n".join(message_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
    conversation = "\n".join(message_text(m.get("content")) for m in messages
                             if m.get("role") in ("user", "assistant"))
    json_mode = (body.get("response_format") or {}).get("type") in ("json_object", "json_schema")
    temperature = body.get("temperature")
    temperature = 1.0 if temperature is None else float(temperature)
    n = int(body.get("n") or 1)
    # The item is looked for in the conversation, then in the system prompt (some workflows put it there).
    item = (index.find(conversation) if conversation else None) or (index.find(system) if system else None)
    if item is None:
        return Call(None, "unknown", json_mode, _read_system(system, json_mode).keys, temperature, n,
                    False, False, False)
    # The question's own words are not instructions. Each feature is read from the rest of the conversation
    # only when the system prompt has not settled it already.
    if item.question in system:
        system = system.replace(item.question, " ")
    sp = _read_system(system, json_mode)
    keys = sp.keys
    asked = conversation.replace(item.question, " ") if item.question in conversation else conversation
    low = asked.lower()
    reasoning = keys.reasoning or sp.reasoning or bool(_REASONING_ASK.search(low))
    role_fit = (any(role_fits(r, item.family) for r in sp.roles)
                or any(role_fits(a or b, item.family) for a, b in _ROLE.findall(low)))
    format_ok = item.kind in sp.formats or bool(_FORMAT.get(item.kind, _FORMAT["text"]).search(low))
    shown = _mentions(asked, low, item)
    verdict = None
    if shown:
        verdict = False if _NEGATIVE.search(low) else True if _POSITIVE.search(low) else None
    call = Call(item, "solve", json_mode, keys, temperature, n, reasoning, role_fit, format_ok, shown, verdict)
    if json_mode and keys.expert and keys.answer is None:
        call.kind = "route"
        call.experts = _expert_lines(asked)
    elif json_mode and (keys.verdict or (keys.feedback and not keys.answer)) and not keys.code:
        call.kind = "review"
    elif not json_mode and shown and _REVIEW_ASK.search(low) and not _CORRECTED.search(low):
        call.kind = "review"
    elif keys.code if json_mode else (sp.code or bool(_CODE_ASK.search(low))):
        call.kind = "code"
    elif shown:
        # A review's verdict shown: a revision. Several answers shown: a debate round. One: a self-check.
        call.kind = "debate" if verdict is None and len(shown) >= 2 else "revise"
    return call


def _expert_lines(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        s = line.strip().lstrip("-*•0123456789.) ").strip()
        if s and not line.strip().startswith("#") and len(s) <= 100 and not s.endswith(("?", ":")):
            lines.append(s)
    return lines
