"""Meta-agent backends: what writes the workflows.

A backend is anything with `model_id`, `async sample(messages, *, n, scope) -> list[ActionSample]` and
`async aclose()`. `scope` names the request's place in the run (episode, turn, candidate, repair round):
backends that cache use it so a resumed or replayed run gets the same samples back in the same places.

`ChatEndpointMetaAgent` talks to any OpenAI-compatible chat endpoint (a vLLM/SGLang or `w4s_jax.serve`
server of an exported checkpoint, or GPT-4o as an untrained, ADAS-style meta-agent) through the same
client stack as the executor (limits, retries, replay cache, cost), with its own accounting.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from .executor import Executor


@dataclass(frozen=True)
class ActionSample:
    text: str
    logprob: float | None = None   # sum of the sampled tokens' log-probs, when the backend knows it
    info: dict = field(default_factory=dict)  # e.g. the serving policy's step and model name


class MetaAgent(Protocol):
    model_id: str

    async def sample(self, messages: list[dict], *, n: int, scope: str) -> list[ActionSample]: ...

    async def aclose(self) -> None: ...


class ChatEndpointMetaAgent:
    def __init__(self, base_url: str, *, model: str, api_key_env: str = "OPENAI_API_KEY",
                 temperature: float = 0.8, max_tokens: int = 4096, max_concurrency: int = 16,
                 cache_path: str | None = None, budget_usd: float | None = None, max_retries: int = 8,
                 request_timeout_s: float = 600.0, logprobs: bool = False, seed: int | None = 0,
                 price_table: dict | None = None):
        if not base_url:
            raise ValueError("meta_agent.base_url is empty: give an OpenAI-compatible endpoint for the "
                             "meta-agent (or meta_agent.path for a local checkpoint)")
        if not 0 <= temperature <= 2:
            raise ValueError(f"meta_agent.temperature must be in [0, 2], got {temperature}")
        self.model_id = model
        self.temperature, self.max_tokens = float(temperature), int(max_tokens)
        self.logprobs = bool(logprobs)   # ask for token log-probs (recorded as action_logprob)
        self.seed = seed                 # per-request seeds derived from it and the scope (None: send none)
        self.client = Executor(base_url, model=model, api_key_env=api_key_env, max_concurrency=max_concurrency,
                               cache_path=cache_path, budget_usd=budget_usd, max_retries=max_retries,
                               request_timeout_s=request_timeout_s, price_table=price_table)

    async def sample(self, messages: list[dict], *, n: int, scope: str) -> list[ActionSample]:
        res = await self.client.chat(messages, model=self.model_id, temperature=self.temperature,
                                     max_completion_tokens=self.max_tokens, n=n, sample_scope=scope,
                                     logprobs=self.logprobs, seed=self._request_seed(scope))
        lps = res.logprobs or [None] * len(res.contents)
        info = dict(res.reply_info or {})
        return [ActionSample(c, lp, info) for c, lp in zip(res.contents, lps)]

    def _request_seed(self, scope: str) -> int | None:
        if self.seed is None:
            return None
        return int.from_bytes(hashlib.sha256(f"{self.seed}/{scope}".encode()).digest()[:4], "little")

    @property
    def stats(self):
        return self.client.stats

    async def aclose(self) -> None:
        await self.client.aclose()
        self.client.close_cache()


class ServedPolicyMetaAgent(ChatEndpointMetaAgent):
    """A policy export, trainer workdir or HF directory served by `python -m w4s_jax.serve` in a child
    process that this backend starts and stops: the same sampling path as any served meta-agent, with
    token log-probs (recorded as action_logprob) and the serving policy step. Given a trainer workdir, the
    server picks up each newer policy step between batches, so every record says which step wrote it."""

    def __init__(self, path: str, *, dtype: str = "auto", max_batch: int = 64, mesh: str = "",
                 start_timeout_s: float = 900.0, **kw):
        from ..sim.process import ServerProcess
        args = ["--model", path, "--dtype", dtype, "--max_batch", str(max_batch)]
        if mesh:
            args += ["--mesh", mesh]
        self.process = ServerProcess("w4s_jax.serve", args, start_timeout_s=start_timeout_s)
        kw.setdefault("logprobs", True)
        from . import prices
        kw.setdefault("price_table", {**prices.PRICES, "policy": (0.0, 0.0, 0.0)})  # our own machine: no API bill
        try:
            super().__init__(self.process.base_url, model="policy", api_key_env="W4S_LOCAL_KEY", **kw)
        except BaseException:
            self.process.close()
            raise

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            self.process.close()
