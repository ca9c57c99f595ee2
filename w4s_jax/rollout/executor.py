"""Async client for the strong executor: any OpenAI-compatible chat-completions endpoint.

One `openai.AsyncOpenAI` per event loop (its URL and headers sent through the transport of
`transport.py`), a cap on requests in flight, optional requests/tokens per minute
limits, exactly one retry layer (the SDK's own retries are off so that they do not multiply with ours),
a SQLite response cache and usage/cost accounting with a budget cap.
"""
from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

from . import prices as prices_mod
from .cache import ResponseCache, canonical_json, request_hash
from .errors import BudgetExceededError, InfraError, MalformedReplyError, RequestRejectedError
from .transport import TRANSPORTS, TransportConnectionError, TransportTimeout, error_text, open_transport

log = logging.getLogger(__name__)

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: "Usage") -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_tokens += other.cached_tokens
        self.cost_usd += other.cost_usd

    def as_dict(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cached_tokens": self.cached_tokens, "cost_usd": self.cost_usd}


@dataclass
class ChatResult:
    contents: list[str]
    usage: Usage          # what this call cost now (zero when replayed from the cache)
    from_cache: bool
    latency_s: float
    model: str
    served_usage: Usage | None = None  # what the reply cost when it was made (= usage unless replayed)
    logprobs: list | None = None       # per choice, the sum of its tokens' log-probs (asked with logprobs=True)
    reply_info: dict | None = None     # the reply's own model name (and policy_step, from w4s_jax.serve)

    def __post_init__(self):
        if self.served_usage is None:
            self.served_usage = self.usage


@dataclass
class ExecutorStats:
    calls: int = 0              # chat() calls answered (cache hits included)
    cache_hits: int = 0
    http_requests: int = 0      # every HTTP attempt, retries included
    retries: int = 0
    infra_errors: int = 0
    rejected: int = 0
    errors_by_kind: dict = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)


class _OwnerCancelled(Exception):
    """The call that others were waiting on was cancelled by its own caller."""


class _LoopState:
    """Everything bound to one event loop: the transport (and its client), the in-flight cap, rate limiters."""

    def __init__(self, ex: "Executor"):
        self.transport = open_transport(ex.transport, ex.base_url, ex._api_key,
                                        max_connections=ex.max_concurrency + 16, timeout_s=ex.request_timeout_s)
        self.sem = asyncio.Semaphore(ex.max_concurrency)
        self.rpm = self.tpm = None
        if ex.rpm or ex.tpm:
            from aiolimiter import AsyncLimiter
            self.rpm = AsyncLimiter(ex.rpm, 60) if ex.rpm else None
            self.tpm = AsyncLimiter(ex.tpm, 60) if ex.tpm else None
        self.inflight: dict[str, asyncio.Future] = {}


class Executor:
    """Async context manager; `await chat(...)` makes one (cached, retried, accounted) completion call."""

    def __init__(self, base_url: str, *, model: str, api_key_env: str = "OPENAI_API_KEY",
                 max_concurrency: int = 64, cache_path: str | None = None, budget_usd: float | None = None,
                 rpm: int | None = None, tpm: int | None = None, max_retries: int = 8,
                 request_timeout_s: float = 120.0, backoff_base_s: float = 0.5, backoff_max_s: float = 60.0,
                 model_map: dict[str, str] | None = None, price_table: dict | None = None,
                 transport: str = "aiohttp", seed: int = 0, sample_seeds: bool = True):
        if max_concurrency < 1:
            raise ValueError(f"Executor: max_concurrency must be >= 1, got {max_concurrency}")
        if transport not in TRANSPORTS:
            raise ValueError(f"Executor: transport must be one of {TRANSPORTS}, got {transport!r}")
        self.base_url = base_url
        self.model = model
        self.model_map = dict(model_map or {})
        self.max_concurrency = max_concurrency
        self.rpm, self.tpm = rpm, tpm
        self.max_retries = max_retries
        self.request_timeout_s = request_timeout_s
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self.transport = transport
        self.sample_seeds = sample_seeds  # send a derived `seed` with sampled requests (see chat())
        self.budget_usd = budget_usd
        self._prices = price_table if price_table is not None else prices_mod.PRICES
        self._rng = random.Random(seed)
        key = os.environ.get(api_key_env)
        if not key:
            if urlparse(base_url).hostname in _LOCAL_HOSTS:
                key = "unused-local-key"  # local servers ignore it, the SDK insists on one
            else:
                raise ValueError(f"Executor: environment variable {api_key_env} (the API key for {base_url}) "
                                 "is not set")
        self._api_key = key
        for m in sorted({model, *self.model_map.values()}):
            if prices_mod.lookup(m, self._prices) is None:
                if budget_usd is not None:
                    raise ValueError(f"Executor: budget_usd is set but model {m!r} has no price in the price "
                                     "table (w4s_jax/rollout/prices.py, or pass price_table=)")
                log.warning("Executor: model %r has no price in the price table; its cost is counted as 0", m)
        self.cache = ResponseCache(cache_path) if cache_path else None
        self.stats = ExecutorStats()
        self._spent = 0.0
        self._sample_counter: dict[str, int] = {}
        self._loops: dict[asyncio.AbstractEventLoop, _LoopState] = {}

    # ----- lifecycle
    async def __aenter__(self) -> "Executor":
        self._state()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        st = self._loops.pop(loop, None)
        if st is not None:
            await st.transport.close()
        if self.cache is not None:
            self.cache.flush()

    def close_cache(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        st = self._loops.get(loop)
        if st is None:
            st = self._loops[loop] = _LoopState(self)
        return st

    # ----- accounting
    @property
    def spent_usd(self) -> float:
        return self._spent

    def resolve_model(self, requested: str | None) -> str:
        """The config decides: a mapped name is honoured, anything else goes to the configured model."""
        if requested and requested in self.model_map:
            return self.model_map[requested]
        return self.model

    def _usage_of(self, body: dict, model: str) -> Usage:
        u = body.get("usage") or {}
        p = int(u.get("prompt_tokens") or 0)
        c = int(u.get("completion_tokens") or 0)
        cached = int(((u.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
        price = prices_mod.lookup(model, self._prices)
        cost = price.cost(p, c, cached) if price else 0.0
        return Usage(p, c, cached, cost)

    def _fail(self, err: Exception) -> Exception:
        kind = getattr(err, "kind", "rejected")
        self.stats.errors_by_kind[kind] = self.stats.errors_by_kind.get(kind, 0) + 1
        if isinstance(err, InfraError):
            self.stats.infra_errors += 1
        else:
            self.stats.rejected += 1
        return err

    # ----- the call
    async def chat(self, messages: list[dict], *, model: str | None = None, temperature: float = 1.0,
                   max_completion_tokens: int = 4096, n: int = 1, response_format: str = "text",
                   sample_scope: str | None = None, logprobs: bool = False,
                   seed: int | None = None) -> ChatResult:
        """One chat completion with `n` choices; raises InfraError, BudgetExceededError, RequestRejectedError.

        `sample_scope` (e.g. workflow + item) numbers the repeats of a sampled request (temperature > 0)
        within that scope only, so that concurrent callers in different scopes cannot swap samples between
        a run and its replay. Greedy requests ignore it: their answers are shared across scopes. With
        `logprobs`, per-token log-probs are asked for and summed per choice (None where the server gives none).
        `seed` is sent as the request's sampling seed (servers that honour it sample reproducibly).
        """
        if response_format not in ("text", "json_object"):
            raise RequestRejectedError(f"response_format must be 'text' or 'json_object', got {response_format!r}")
        resolved = self.resolve_model(model)
        request = {"model": resolved, "messages": messages, "temperature": temperature,
                   "max_completion_tokens": max_completion_tokens, "n": n}
        if response_format == "json_object":
            request["response_format"] = {"type": "json_object"}
        if logprobs:
            request["logprobs"] = True
        if seed is not None:
            request["seed"] = int(seed)
        # The endpoint is not part of the key: a replay may run against another server (or none).
        encoded = canonical_json(request)  # hashed here and sent as the body: encoded once
        h = request_hash(encoded)
        st = self._state()
        if temperature > 0:
            if sample_scope is not None:
                h = hashlib.sha256(f"{h}|{sample_scope}".encode()).hexdigest()
            # Each repetition of an identical sampled request is its own sample: the k-th repetition in a
            # run is cached under index k, so replays are exact and repeats stay distinct.
            sample = self._sample_counter.get(h, 0)
            self._sample_counter[h] = sample + 1
            key = f"{h}:{sample}"
            if seed is None and self.sample_seeds:
                # A seed of its own per (request, scope, repetition): a server that honours seeds gives the
                # same sample however concurrent evaluations interleave. Not part of the cache key.
                request["seed"] = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little") >> 1
                encoded = canonical_json(request)
        else:
            sample, key = 0, f"{h}:0"
            # Identical greedy request already in flight: share its answer. If its caller was cancelled
            # (an abandoned evaluation), that is no failure of ours: make the call ourselves.
            while (pending := st.inflight.get(key)) is not None:
                try:
                    res = await asyncio.shield(pending)
                except _OwnerCancelled:
                    continue
                self.stats.calls += 1
                return ChatResult(res.contents, Usage(), True, 0.0, resolved, served_usage=res.served_usage,
                                  logprobs=res.logprobs, reply_info=res.reply_info)
        t0 = time.perf_counter()
        if self.cache is not None:
            hit = self.cache.get(h, sample)
            if hit is not None:
                self.stats.calls += 1
                self.stats.cache_hits += 1
                return ChatResult(list(hit["contents"]), Usage(), True, time.perf_counter() - t0, resolved,
                                  served_usage=Usage(**(hit.get("usage") or {})), logprobs=hit.get("logprobs"),
                                  reply_info=hit.get("reply_info"))
        fut = None
        if temperature <= 0:
            fut = st.inflight[key] = asyncio.get_running_loop().create_future()
        try:
            body = await self._request_with_retries(st, request, encoded)
            contents = _parse_choices(body, self.base_url, n)
            lps = _sum_logprobs(body, n) if logprobs else None
            info = {k: body[k] for k in ("model", "policy_step") if k in body}
            usage = self._usage_of(body, resolved)
        except BaseException as e:
            if fut is not None:
                st.inflight.pop(key, None)
                if not fut.done():
                    fut.set_exception(e if isinstance(e, Exception) else _OwnerCancelled())
                    fut.exception()  # mark retrieved: waiters, if any, re-raise it themselves
            if isinstance(e, (InfraError, RequestRejectedError)):
                raise self._fail(e) from None
            raise
        self._spent += usage.cost_usd
        self.stats.calls += 1
        self.stats.usage.add(usage)
        if self.cache is not None:
            self.cache.put(h, sample, {"contents": contents, "usage": usage.as_dict(),
                                       "reply_info": info, **({"logprobs": lps} if logprobs else {})})
        res = ChatResult(contents, usage, False, time.perf_counter() - t0, resolved, logprobs=lps, reply_info=info)
        if fut is not None:
            st.inflight.pop(key, None)
            fut.set_result(res)
        return res

    async def _request_with_retries(self, st: _LoopState, request: dict, encoded: bytes) -> dict:
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                if st.rpm is not None:
                    await st.rpm.acquire()
                if st.tpm is not None:
                    await st.tpm.acquire(min(self.tpm, _estimate_tokens(request)))
                async with st.sem:
                    # Checked once the call holds a slot, so that at most max_concurrency calls (those
                    # already in flight) can still add to the spending once the cap is reached.
                    if attempt == 0 and self.budget_usd is not None and self._spent >= self.budget_usd:
                        raise BudgetExceededError(f"budget of ${self.budget_usd:.4f} reached (spent "
                                                  f"${self._spent:.4f}); no new executor calls are started")
                    self.stats.http_requests += 1
                    reply = await st.transport.post("chat/completions", request, encoded)
                code = reply.status
                if 200 <= code < 300:
                    try:
                        body = json.loads(reply.body)
                        if not isinstance(body, dict):
                            raise ValueError("top level is not an object")
                        return body
                    except ValueError as e:
                        raise MalformedReplyError(f"executor reply from {self.base_url} (HTTP {code}) is not "
                                                  f"valid JSON: {e}; body starts {reply.body[:80]!r}") from None
                if code in (401, 403, 404):
                    raise InfraError(f"executor {self.base_url} refused the request with HTTP {code} "
                                     f"(key, permission or model name?): {error_text(reply)}", kind="config")
                if code in (400, 413, 422):
                    raise RequestRejectedError(f"executor rejected the request (HTTP {code}): {error_text(reply)}")
                if code != 429 and code < 500 and code not in (408, 409):
                    raise InfraError(f"executor {self.base_url}: HTTP {code}: {error_text(reply)}", kind="http")
                last = InfraError(f"executor {self.base_url}: HTTP {code} after {attempt + 1} attempts: "
                                  f"{error_text(reply)}", kind="rate_limit" if code == 429 else "server_error")
                retry_after = _retry_after(reply.headers)
            except MalformedReplyError as e:
                last = e
            except TransportTimeout:
                last = InfraError(f"executor {self.base_url}: request timed out ({self.request_timeout_s:g} s) "
                                  f"after {attempt + 1} attempts", kind="timeout")
            except TransportConnectionError as e:
                last = InfraError(f"executor {self.base_url}: connection failed after {attempt + 1} attempts: "
                                  f"{_short(e)}", kind="connection")
            if attempt == self.max_retries:
                break
            self.stats.retries += 1
            delay = min(self.backoff_max_s, self.backoff_base_s * (2 ** attempt)) * (0.5 + 0.5 * self._rng.random())
            if retry_after is not None:
                delay = min(self.backoff_max_s, max(retry_after, 0.0))
            await asyncio.sleep(delay)
        assert last is not None
        raise last


def _parse_choices(body: dict, where: str, n: int) -> list[str]:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedReplyError(f"executor reply from {where}: 'choices' missing or empty")
    out: list[tuple[int, str]] = []
    for j, ch in enumerate(choices):
        msg = ch.get("message") if isinstance(ch, dict) else None
        if not isinstance(msg, dict):
            raise MalformedReplyError(f"executor reply from {where}: choices[{j}].message missing")
        content = msg.get("content")
        if content is None:
            content = ""  # a refusal or tool call: no text, which the workflow sees as an empty answer
        if not isinstance(content, str):
            raise MalformedReplyError(f"executor reply from {where}: choices[{j}].message.content is "
                                      f"{type(content).__name__}, not a string")
        idx = ch.get("index", j)
        out.append((idx if isinstance(idx, int) else j, content))
    out.sort(key=lambda t: t[0])
    if len(out) != n:
        raise MalformedReplyError(f"executor reply from {where}: asked for {n} choices, got {len(out)}")
    return [c for _, c in out]


def _sum_logprobs(body: dict, n: int) -> list:
    """Per choice (in index order), the sum of `logprobs.content[*].logprob`; None where absent."""
    chs = sorted((c for c in body.get("choices") or [] if isinstance(c, dict)),
                 key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0)
    out = []
    for ch in chs[:n]:
        lp = ch.get("logprobs")
        content = lp.get("content") if isinstance(lp, dict) else None
        try:
            out.append(float(sum(t["logprob"] for t in content)) if content else None)
        except (TypeError, KeyError):
            out.append(None)
    return out


def _estimate_tokens(request: dict) -> int:
    chars = sum(len(str(m.get("content", ""))) for m in request["messages"])
    return chars // 4 + request["max_completion_tokens"] * request["n"]


def _retry_after(headers) -> float | None:
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        v = float(ra)
        return v if math.isfinite(v) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _short(e: Exception, limit: int = 300) -> str:
    s = str(e)
    return s if len(s) <= limit else s[:limit] + "..."
