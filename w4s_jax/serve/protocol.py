"""The OpenAI chat-completions wire format: request validation (one 400 naming the field per problem) and
reply building (text, stop strings, finish reasons, per-token log-probs, usage).

Log-probs are those of the sampled tokens under the model's own distribution (temperature 1, no top-p),
what a trainer computes as log pi(a|s); `top_logprobs` is not offered. Stop strings are applied to the
decoded text: the reply ends before the first one, its finish reason is "stop", and `logprobs.content` lists
the tokens whose text lies before it.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import secrets
import time
import uuid

ROLES = ("system", "user", "assistant", "developer", "tool")
# Accepted with their default (no-op) value only; anything else would silently change what is asked for.
_NEUTRAL = {"stream": (False, None), "frequency_penalty": (0, 0.0, None), "presence_penalty": (0, 0.0, None),
            "logit_bias": (None,), "top_logprobs": (0, None), "response_format": (None,), "tools": (None,),
            "tool_choice": (None, "none"), "parallel_tool_calls": (None,), "stream_options": (None,)}
_IGNORED = ("model", "user", "metadata", "store", "service_tier")
_FIELDS = ("messages", "n", "temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stop",
           "logprobs")
MAX_STOP = 4


class RequestError(ValueError):
    """A request the client must fix: HTTP status, message and the offending parameter."""

    def __init__(self, message: str, param: str | None = None, status: int = 400,
                 type_: str = "invalid_request_error"):
        super().__init__(message)
        self.param, self.status, self.type = param, status, type_

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.type, "param": self.param, "code": None}}


@dataclasses.dataclass
class ChatRequest:
    messages: list[dict]
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = None   # None = up to the server's default, within the context
    max_tokens_field: str = "max_tokens"  # the name the client used, for errors
    seed: int = 0
    seed_given: bool = False
    stop: tuple[str, ...] = ()
    logprobs: bool = False


def _int(body: dict, key: str, lo: int, hi: int | None = None) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise RequestError(f"{key} must be an integer, got {v!r}", key)
    if v < lo or (hi is not None and v > hi):
        raise RequestError(f"{key} must be in [{lo}, {hi if hi is not None else 'inf'}], got {v}", key)
    return int(v)


def _number(body: dict, key: str, default: float, ok, what: str) -> float:
    v = body.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or not ok(v):
        raise RequestError(f"{key} must be {what}, got {v!r}", key)
    return float(v)


def _content(m: dict, i: int) -> str:
    c = m.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):  # content parts: only text is meaningful to this model
        out = []
        for j, part in enumerate(c):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise RequestError(f"messages[{i}].content[{j}] must be a text part "
                                   f"({{'type': 'text', 'text': ...}}), got {part!r:.100}", f"messages[{i}].content")
            out.append(part["text"])
        return "".join(out)
    if c is None and m.get("role") == "assistant":
        return ""
    raise RequestError(f"messages[{i}].content must be a string or a list of text parts, got {c!r:.100}",
                       f"messages[{i}].content")


def parse_request(body, *, max_n: int) -> ChatRequest:
    """A validated ChatRequest from a decoded JSON body, or RequestError naming the field."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    for key, allowed in _NEUTRAL.items():
        if key in body and body[key] not in allowed:
            raise RequestError(f"{key}={body[key]!r:.100} is not supported by this server "
                               f"(accepted: {', '.join(map(repr, allowed))})", key)
    unknown = sorted(k for k in body if k not in _FIELDS and k not in _NEUTRAL and k not in _IGNORED)
    if unknown:
        raise RequestError(f"unknown parameter {unknown[0]!r}; this server supports {', '.join(_FIELDS)}",
                           unknown[0])
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise RequestError("messages must be a non-empty list of {role, content} objects", "messages")
    messages = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise RequestError(f"messages[{i}] must be an object with role and content", f"messages[{i}]")
        if m.get("role") not in ROLES:
            raise RequestError(f"messages[{i}].role must be one of {ROLES}, got {m.get('role')!r:.50}",
                               f"messages[{i}].role")
        messages.append({"role": m["role"], "content": _content(m, i)})
    n = _int(body, "n", 1, max_n)
    temperature = _number(body, "temperature", 1.0, lambda v: 0 <= v <= 2, "a number in [0, 2]")
    top_p = _number(body, "top_p", 1.0, lambda v: 0 < v <= 1, "a number in (0, 1]")
    max_tokens = _int(body, "max_tokens", 1)
    max_completion = _int(body, "max_completion_tokens", 1)
    if max_tokens is not None and max_completion is not None and max_tokens != max_completion:
        raise RequestError(f"max_tokens ({max_tokens}) and max_completion_tokens ({max_completion}) disagree; "
                           f"send one", "max_completion_tokens")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or not -2**63 <= seed < 2**64):
        raise RequestError(f"seed must be a 64-bit integer, got {seed!r:.50}", "seed")
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop) if isinstance(stop, list) else stop
    if stops is None:
        stops = ()
    if not isinstance(stops, tuple) or len(stops) > MAX_STOP or not all(isinstance(s, str) and s for s in stops):
        raise RequestError(f"stop must be a non-empty string or a list of at most {MAX_STOP} of them, "
                           f"got {stop!r:.100}", "stop")
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise RequestError(f"logprobs must be true or false, got {logprobs!r:.50}", "logprobs")
    return ChatRequest(messages=messages, n=n or 1, temperature=temperature, top_p=top_p,
                       max_tokens=max_completion if max_completion is not None else max_tokens,
                       max_tokens_field="max_completion_tokens" if max_completion is not None else "max_tokens",
                       # the sampler keeps 32 bits of a seed; OpenAI clients may send any 64-bit one
                       seed=(int(seed) % 2**32) if seed is not None else secrets.randbits(32),
                       seed_given=seed is not None, stop=tuple(dict.fromkeys(stops)), logprobs=bool(logprobs))


def _byte_level_table() -> dict[str, int]:
    """Byte-level BPE's printable stand-ins for the 256 byte values (GPT-2 / Qwen vocabularies), inverted."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1),
                 *range(ord("\xae"), ord("\xff") + 1)]
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return {c: b for b, c in chars.items()}


_BYTE_LEVEL = _byte_level_table()


def token_bytes(tokenizer, ids: list[int]) -> list[list[int]]:
    """The exact bytes of each token: from the vocabulary string for byte-level BPE tokenizers (a token may
    hold part of a UTF-8 character), else the UTF-8 of the token's decoded text."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and type(backend.decoder).__name__ == "ByteLevel":
        out = []
        for t, piece in zip(ids, tokenizer.convert_ids_to_tokens(ids)):
            if piece is not None and all(c in _BYTE_LEVEL for c in piece):
                out.append([_BYTE_LEVEL[c] for c in piece])
            else:  # an added (special) token is stored as plain text
                out.append(list(tokenizer.decode([t]).encode("utf-8")))
        return out
    return [list(tokenizer.decode([t]).encode("utf-8")) for t in ids]


class _Prefixes:
    """Lengths of the decoded text of the first k tokens, computed on demand (binary searches need a few)."""

    def __init__(self, tokenizer, tokens):
        self.tok, self.tokens, self.cache = tokenizer, tokens, {0: 0}

    def __call__(self, k: int) -> int:
        if k not in self.cache:
            self.cache[k] = len(self.tok.decode(self.tokens[:k], skip_special_tokens=True))
        return self.cache[k]

    def first(self, pred) -> int:
        """Smallest k in [0, len] with pred(len of prefix k) true (pred monotone); len + 1 if none."""
        lo, hi = 0, len(self.tokens) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if mid <= len(self.tokens) and pred(self(mid)):
                hi = mid
            else:
                lo = mid + 1
        return lo


def build_choice(tokenizer, index: int, tokens: list[int], logprobs: list[float], reason: str,
                 req: ChatRequest) -> tuple[dict, int]:
    """One `choices[i]` entry and the number of completion tokens it used."""
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    kept = used = len(tokens)
    cut = min((i for i in (text.find(s) for s in req.stop) if i >= 0), default=-1)
    if cut >= 0:
        end = cut + min(len(s) for s in req.stop if text.find(s) == cut)
        prefixes = _Prefixes(tokenizer, tokens)
        used = min(len(tokens), prefixes.first(lambda n: n >= end))  # the token that completed the stop string
        kept = max(0, prefixes.first(lambda n: n > cut) - 1)          # tokens wholly before it
        text, reason = text[:cut], "stop"
    choice = {"index": index, "message": {"role": "assistant", "content": text}, "finish_reason": reason,
              "logprobs": None}
    if req.logprobs:
        ids = tokens[:kept]
        pieces = tokenizer.batch_decode([[t] for t in ids], skip_special_tokens=False)
        choice["logprobs"] = {"content": [{"token": p, "logprob": float(lp), "bytes": b, "top_logprobs": []}
                                          for p, lp, b in zip(pieces, logprobs[:kept], token_bytes(tokenizer, ids))],
                              "refusal": None}
    return choice, used


def completion_body(model_id: str, step: int | None, choices: list[dict], prompt_tokens: int,
                    completion_tokens: int, seed: int) -> dict:
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model_id, "choices": choices, "system_fingerprint": model_id,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            # not in OpenAI's schema (clients keep unknown fields): the policy step and the seed used
            "policy_step": step, "seed": seed}
