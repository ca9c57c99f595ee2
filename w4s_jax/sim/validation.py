"""Requests a real OpenAI server refuses, refused the same way: status code and error body.

The bodies follow the shape and wording of OpenAI's chat-completions API, `{"error": {"message", "type",
"param", "code"}}`, so clients (the openai SDK, our Executor) react as they would to the real service:
404 `model_not_found` for an unknown model, 400 `invalid_request_error` for a bad field, naming it in
`param`.
"""
from __future__ import annotations

import math
import re

from .request import message_text

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_ROLE_SET = frozenset(ROLES)
_JSON_WORD = re.compile("json", re.IGNORECASE)
KNOWN_FIELDS = frozenset({
    "model", "messages", "temperature", "top_p", "n", "max_tokens", "max_completion_tokens", "stop", "seed",
    "response_format", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "user",
    "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls", "metadata", "store", "service_tier",
    "reasoning_effort", "modalities", "prediction"})
MAX_N = 128
MAX_COMPLETION_TOKENS = 16384   # GPT-4o-mini's limit


class RequestError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type_: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}


def unparsable_body() -> RequestError:
    return RequestError(400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                             "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
                             "sent was not valid JSON.)")


def _type_name(v) -> str:
    if v is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a decimal", str: "a string", list: "an array",
            dict: "an object"}.get(type(v), type(v).__name__)


def _number(body: dict, name: str, lo: float, hi: float, *, integer: bool = False):
    v = body.get(name)
    if v is None or ((type(v) is int or (type(v) is float and not integer and math.isfinite(v))) and lo <= v <= hi):
        return v
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok or (isinstance(v, float) and not math.isfinite(v)):
        kind = "an integer" if integer else "a number"
        raise RequestError(400, f"Invalid type for '{name}': expected {kind}, but got {_type_name(v)} instead.",
                           name, "invalid_type")
    word = "integer" if integer else "decimal"
    if v < lo:
        raise RequestError(400, f"Invalid '{name}': {word} below minimum value. Expected a value >= {lo:g}, but "
                                f"got {v:g} instead.", name, f"{word}_below_min_value")
    if v > hi:
        raise RequestError(400, f"Invalid '{name}': {word} above maximum value. Expected a value <= {hi:g}, but "
                                f"got {v:g} instead.", name, f"{word}_above_max_value")
    return v


def validate_request(body, models: tuple[str, ...] | None) -> None:
    """Raise RequestError as the real API would; `models`: the names served (None: any name)."""
    if not isinstance(body, dict):
        raise RequestError(400, f"Invalid type for request body: expected an object, but got {_type_name(body)} "
                                "instead.", None, "invalid_type")
    if not KNOWN_FIELDS.issuperset(body):
        raise RequestError(400, f"Unrecognized request argument supplied: {sorted(set(body) - KNOWN_FIELDS)[0]}")
    if models is not None:
        model = body.get("model")
        if model is None:
            raise RequestError(400, "you must provide a model parameter")
        if model not in models:
            raise RequestError(404, f"The model `{model}` does not exist or you do not have access to it.", None,
                               "model_not_found")
    if "messages" not in body:
        raise RequestError(400, "Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise RequestError(400, f"Invalid type for 'messages': expected an array of objects, but got "
                                f"{_type_name(messages)} instead.", "messages", "invalid_type")
    if not messages:
        raise RequestError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                                "empty array instead.", "messages", "empty_array")
    for i, m in enumerate(messages):
        if type(m) is dict and type(m.get("content")) is str and m.get("role") in _ROLE_SET:
            continue   # the common case, settled at once
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise RequestError(400, f"Invalid type for '{where}': expected an object, but got {_type_name(m)} "
                                    "instead.", where, "invalid_type")
        if "role" not in m:
            raise RequestError(400, f"Missing required parameter: '{where}.role'.", f"{where}.role",
                               "missing_required_parameter")
        if m["role"] not in ROLES:
            raise RequestError(400, f"Invalid value: '{m['role']}'. Supported values are: 'system', 'assistant', "
                                    "'user', 'function', 'tool', and 'developer'.", f"{where}.role", "invalid_value")
        content = m.get("content")
        if content is None and m["role"] in ("system", "developer", "user"):
            raise RequestError(400, f"Missing required parameter: '{where}.content'.", f"{where}.content",
                               "missing_required_parameter")
        if content is not None and not isinstance(content, (str, list)):
            raise RequestError(400, f"Invalid type for '{where}.content': expected one of a string or array of "
                                    f"objects, but got {_type_name(content)} instead.", f"{where}.content",
                               "invalid_type")
    _number(body, "n", 1, MAX_N, integer=True)
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    for name in ("max_completion_tokens", "max_tokens"):
        v = _number(body, name, 1, math.inf, integer=True)
        if v is not None and models is not None and v > MAX_COMPLETION_TOKENS:
            raise RequestError(400, f"{name} is too large: {v}. This model supports at most {MAX_COMPLETION_TOKENS} "
                                    f"completion tokens, whereas you provided {v}.", name, "invalid_value")
    if body.get("stream"):
        raise RequestError(400, "Streaming is not supported by this simulated server.", "stream", "unsupported_value")
    rf = body.get("response_format")
    if rf is not None:
        kind = rf.get("type") if isinstance(rf, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            raise RequestError(400, f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', "
                                    "and 'text'.", "response_format.type", "invalid_value")
        if kind == "json_object" and models is not None and not any(
                _JSON_WORD.search(message_text(m.get("content"))) for m in messages):
            raise RequestError(400, "'messages' must contain the word 'json' in some form, to use 'response_format' "
                                    "of type 'json_object'.", "messages")
