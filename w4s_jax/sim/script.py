"""Scripted replies for the simulated executor.

A script is a list of rules tried in order against the last user message of a request; the first rule
that matches answers. Choice j of a request with `n` choices gets `replies[j % len(replies)]`, so
self-consistency workflows see a known mix of answers. JSON form (for a server in its own process):

    {"rules": [{"contains": "capital of France", "replies": ["Paris"]},
               {"regex": "What is (\\d+) \\+ (\\d+)", "replies": ["\\1 plus \\2"], "expand": true},
               {"json": true, "replies": ["{\\"answer\\": \\"42\\"}"]}],
     "default": "I do not know"}

`json: true` restricts a rule to requests with response_format json_object (false: only to text ones);
`expand: true` substitutes the regex groups (\\1, \\g<name>) into the reply; `system_contains` also
requires a substring in the system message.
"""
from __future__ import annotations

import json
import re
from pathlib import Path


def _last_user(body: dict) -> str:
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            return str(m.get("content", ""))
    return ""


def _system(body: dict) -> str:
    return "\n".join(str(m.get("content", "")) for m in body.get("messages") or []
                     if isinstance(m, dict) and m.get("role") in ("system", "developer"))


class Responder:
    def __init__(self, rules: list[dict], default: str | None = None):
        self.rules = []
        for i, r in enumerate(rules):
            if not isinstance(r, dict):
                raise ValueError(f"sim script: rule {i} is not an object")
            unknown = set(r) - {"contains", "regex", "json", "replies", "expand", "system_contains"}
            if unknown:
                raise ValueError(f"sim script: rule {i} has unknown fields {sorted(unknown)}")
            replies = r.get("replies")
            if not (isinstance(replies, list) and replies and all(isinstance(x, str) for x in replies)):
                raise ValueError(f"sim script: rule {i} needs 'replies', a non-empty list of strings")
            rx = None
            if r.get("regex") is not None:
                try:
                    rx = re.compile(r["regex"], re.S)
                except re.error as e:
                    raise ValueError(f"sim script: rule {i} regex: {e}") from None
            self.rules.append((r.get("contains"), rx, r.get("json"), replies, bool(r.get("expand")),
                               r.get("system_contains")))
        self.default = default

    @classmethod
    def constant(cls, reply: str) -> "Responder":
        return cls([], default=reply)

    @classmethod
    def from_dict(cls, d: dict) -> "Responder":
        if not isinstance(d, dict) or not isinstance(d.get("rules", []), list):
            raise ValueError("sim script: expected an object with a 'rules' list")
        return cls(d.get("rules", []), d.get("default"))

    def __call__(self, body: dict, choice: int) -> str:
        text = _last_user(body)
        wants_json = (body.get("response_format") or {}).get("type") == "json_object"
        for contains, rx, json_only, replies, expand, sys_contains in self.rules:
            if json_only is not None and bool(json_only) != wants_json:
                continue
            if contains is not None and contains not in text:
                continue
            if sys_contains is not None and sys_contains not in _system(body):
                continue
            m = None
            if rx is not None:
                m = rx.search(text)
                if m is None:
                    continue
            reply = replies[choice % len(replies)]
            return m.expand(reply) if (expand and m is not None) else reply
        if self.default is None:
            raise ValueError(f"no rule matches the request (last user message starts {text[:80]!r})")
        return self.default


def load_script(path: str | Path) -> Responder:
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"sim script {path}: cannot read: {e}") from None
    try:
        return Responder.from_dict(d)
    except ValueError as e:
        raise ValueError(f"sim script {path}: {e}") from None
