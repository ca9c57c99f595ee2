"""Meta-agent backends: what writes the workflows.

A backend is anything with `model_id`, `async sample(messages, *, n, scope) -> list[ActionSample]` and
`async aclose()`. `scope` names the request's place in the run (episode, turn, candidate, repair round):
backends that cache use it so a resumed or replayed run gets the same samples back in the same places.

`ChatEndpointMetaAgent` talks to any OpenAI-compatible chat endpoint (a vLLM/SGLang or `w4s_jax.serve`
server of an exported checkpoint, or GPT-4o as an untrained, ADAS-style meta-agent) through the same
client stack as the executor (limits, retries, replay cache, cost), with its own accounting.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .executor import Executor


@dataclass(frozen=True)
class ActionSample:
    text: str
    logprob: float | None = None   # sum of the sampled tokens' log-probs, when the backend knows it


class MetaAgent(Protocol):
    model_id: str

    async def sample(self, messages: list[dict], *, n: int, scope: str) -> list[ActionSample]: ...

    async def aclose(self) -> None: ...


class ChatEndpointMetaAgent:
    def __init__(self, base_url: str, *, model: str, api_key_env: str = "OPENAI_API_KEY",
                 temperature: float = 0.8, max_tokens: int = 4096, max_concurrency: int = 16,
                 cache_path: str | None = None, budget_usd: float | None = None, max_retries: int = 8,
                 request_timeout_s: float = 600.0, logprobs: bool = False):
        if not base_url:
            raise ValueError("meta_agent.base_url is empty: give an OpenAI-compatible endpoint for the "
                             "meta-agent (or meta_agent.path for a local checkpoint)")
        if not 0 <= temperature <= 2:
            raise ValueError(f"meta_agent.temperature must be in [0, 2], got {temperature}")
        self.model_id = model
        self.temperature, self.max_tokens = float(temperature), int(max_tokens)
        self.logprobs = bool(logprobs)   # ask for token log-probs (recorded as action_logprob)
        self.client = Executor(base_url, model=model, api_key_env=api_key_env, max_concurrency=max_concurrency,
                               cache_path=cache_path, budget_usd=budget_usd, max_retries=max_retries,
                               request_timeout_s=request_timeout_s)

    async def sample(self, messages: list[dict], *, n: int, scope: str) -> list[ActionSample]:
        res = await self.client.chat(messages, model=self.model_id, temperature=self.temperature,
                                     max_completion_tokens=self.max_tokens, n=n, sample_scope=scope,
                                     logprobs=self.logprobs)
        lps = res.logprobs or [None] * len(res.contents)
        return [ActionSample(c, lp) for c, lp in zip(res.contents, lps)]

    @property
    def stats(self):
        return self.client.stats

    async def aclose(self) -> None:
        await self.client.aclose()
        self.client.close_cache()
