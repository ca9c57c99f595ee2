"""The `agent` object a workflow's `solver(agent, task)` receives.

Runs inside the sandbox worker, so it uses the standard library only. Argument names, defaults and
return shapes follow the public W4S executor interface (see DESIGN.md), so workflows written for it run
unchanged; the actual API call and the code execution are delegated to a transport (pipe to the parent
service and fork server in the sandbox; a fake in unit tests).
"""
from __future__ import annotations

import json


class ExecutorUnavailable(BaseException):
    """The executor API failed for reasons outside the workflow (after retries, or budget exhausted).

    A BaseException on purpose: the usual `except Exception:` in a workflow must not swallow it and turn
    an outage into a plausible-looking wrong answer. The service also records it independently.
    """


def missing_key_marker(key: str) -> str:
    return f"[missing: the reply had no '{key}' field]"


def _check_messages(messages) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ValueError(f"messages[{i}] must be a dict, got {type(m).__name__}")
        if "role" not in m or "content" not in m:
            raise ValueError(f"messages[{i}] needs both 'role' and 'content' (has {sorted(m)})")
        extra = set(m) - {"role", "content"}
        if extra:
            raise ValueError(f"messages[{i}] has unexpected keys {sorted(extra)}; only 'role' and 'content'")
        if not isinstance(m["role"], str) or m["role"] not in ("system", "developer", "user", "assistant"):
            raise ValueError(f"messages[{i}]['role'] must be 'system', 'user' or 'assistant', got {m['role']!r}")
        # Non-string content (numbers, lists) is stringified, as the public interface does.
        out.append({"role": m["role"], "content": m["content"] if isinstance(m["content"], str)
                    else str(m["content"])})
    return out


def _parse_json_reply(text: str) -> dict:
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as e:
        return {"error": f"the reply is not valid JSON ({e})", "raw_reply": text}
    if not isinstance(value, dict):
        return {"error": f"the reply is JSON but not an object ({type(value).__name__})", "raw_reply": text}
    return value


class Agent:
    def __init__(self, transport):
        self._transport = transport

    def call_llm(self, *, messages, model: str = "gpt-4o-mini", temperature: float = 1.0,
                 max_completion_tokens: int = 4096, num_of_response: int = 1, response_format: str = "text",
                 agent_role: str = "task solver", instructions: str = "", tools=None, tool_choice=None):
        """Chat completion; returns a list of `num_of_response` strings (dicts when response_format is json)."""
        if tools is not None or tool_choice is not None:
            raise ValueError("call_llm: tools / tool_choice are not supported by this executor API")
        if response_format not in ("text", "json", "json_object"):
            raise ValueError(f"call_llm: response_format must be 'text' or 'json', got {response_format!r}")
        msgs = _check_messages(messages)
        if msgs[0]["role"] != "system":
            system = f"You are a helpful {agent_role}.\n{instructions}".strip()
            msgs = [{"role": "system", "content": system}, *msgs]
        try:
            n = int(num_of_response)
            temperature = float(temperature)
            max_completion_tokens = int(max_completion_tokens)
        except (TypeError, ValueError):
            raise ValueError("call_llm: num_of_response, temperature and max_completion_tokens must be numbers")
        if not 1 <= n <= 64:
            raise ValueError(f"call_llm: num_of_response must be between 1 and 64, got {n}")
        as_json = response_format in ("json", "json_object")
        contents = self._transport.call({
            "messages": msgs, "model": str(model), "temperature": temperature,
            "max_completion_tokens": max_completion_tokens, "n": n,
            "response_format": "json_object" if as_json else "text"})
        if not as_json:
            return list(contents)
        return [_parse_json_reply(c) for c in contents]

    def call_json_format_llm(self, *, messages, model: str = "gpt-3.5-turbo", temperature: float = 1.0,
                             max_completion_tokens: int = 4096, num_of_response: int = 1,
                             agent_role: str = "task solver", return_dict_keys=(), instructions: str = ""):
        """Ask for a JSON object with the given keys; returns a list of dicts, every requested key present."""
        keys = [str(k) for k in (return_dict_keys or [])]
        msgs = _check_messages(messages)
        lines = [f"You are a helpful {agent_role}."]
        if keys:
            lines.append("Answer with a single JSON object whose keys are exactly: "
                         + ", ".join(json.dumps(k) for k in keys) + ".")
        else:
            lines.append("Answer with a single JSON object.")
        if instructions:
            lines.append(str(instructions))
        system = {"role": "system", "content": "\n".join(lines)}
        replies = self.call_llm(messages=[system, *msgs], model=model, temperature=temperature,
                                max_completion_tokens=max_completion_tokens, num_of_response=num_of_response,
                                response_format="json")
        for reply in replies:
            for k in keys:
                if k not in reply:
                    reply[k] = missing_key_marker(k)
        return replies

    def execute_code(self, code: str, timeout: float = 5):
        """Run `code` in a separate limited process; return solution() if defined, else the last line's value.

        Raises an Exception describing the error, or TimeoutError after `timeout` seconds.
        """
        if not isinstance(code, str):
            raise ValueError(f"execute_code: code must be a string, got {type(code).__name__}")
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            raise ValueError(f"execute_code: timeout must be a number, got {timeout!r}")
        timeout = min(max(timeout, 0.05), 60.0)
        return self._transport.execute(code, timeout)
