"""Dynamic batching over the sampler, and policy hot reload between batches.

Requests wait in a queue; one batcher task takes everything waiting (up to `max_batch` sample rows) and
serves it with a single `sample_requests` call in the sampling thread, while the event loop goes on
accepting requests for the next call. When the queue was empty, the batcher waits `batch_wait_s` after the
first arrival so that requests sent together share the call. Each request's samples depend only on the
request and its seed (the sampler gives every request its own random stream), so batching never changes
what a seeded request returns.

Before each batch (and every `reload_poll_s` while idle) the batcher looks for a newer complete policy step
(workdir sources) and loads it in the sampling thread, so a reload happens between batches, never during one.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
import time

from w4s_jax.models import chat_prompt_ids
from w4s_jax.sampling import SampleRequest, SamplingError, check_request, sample_requests
from w4s_jax.serve.policy import Policy, PolicySource, ServeError
from w4s_jax.serve.protocol import ChatRequest, RequestError, build_choice, completion_body

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _Pending:
    req: ChatRequest
    future: asyncio.Future


class Engine:
    def __init__(self, source: PolicySource, *, max_batch: int = 128, batch_wait_s: float = 0.005,
                 reload_poll_s: float = 2.0, default_max_tokens: int = 2048):
        if max_batch < 1:
            raise ServeError(f"--max_batch must be >= 1, got {max_batch}")
        if default_max_tokens < 1:
            raise ServeError(f"--default_max_tokens must be >= 1, got {default_max_tokens}")
        self.source = source
        self.max_batch, self.batch_wait_s = max_batch, batch_wait_s
        self.reload_poll_s, self.default_max_tokens = reload_poll_s, default_max_tokens
        self.policy: Policy = source.load_initial()
        self.stats = {"requests": 0, "sampler_calls": 0, "rows": 0, "reloads": 0, "reload_failures": 0,
                      "errors": 0, "sampler_s": 0.0,
                      "batch_requests": collections.deque(maxlen=256)}  # requests per sampler call, latest
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="serve-sampler")
        self._queue: collections.deque[_Pending] = collections.deque()
        self._arrived = asyncio.Event()  # set when a request is queued (binds to the loop on first use)

    # ----- called from the event loop
    async def submit(self, req: ChatRequest) -> dict:
        """The completion body for `req` (RequestError for a request the model cannot serve)."""
        if req.n > self.max_batch:
            raise RequestError(f"n={req.n} exceeds this server's --max_batch={self.max_batch}", "n")
        fut = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(req, fut))
        self.stats["requests"] += 1
        self._arrived.set()
        return await fut

    async def run(self) -> None:
        """The batcher: runs until cancelled."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._queue:
                    self._arrived.clear()
                    try:
                        await asyncio.wait_for(self._arrived.wait(), self.reload_poll_s)
                    except asyncio.TimeoutError:
                        await loop.run_in_executor(self._pool, self._maybe_reload)
                        continue
                    if self.batch_wait_s > 0:
                        await asyncio.sleep(self.batch_wait_s)  # requests sent together arrive within ms
                batch, rows = [], 0
                while self._queue and (not batch or rows + self._queue[0].req.n <= self.max_batch):
                    p = self._queue.popleft()
                    if not p.future.done():  # a client that gave up is not served
                        batch.append(p)
                        rows += p.req.n
                if not batch:
                    continue
                try:
                    results = await loop.run_in_executor(self._pool, self._serve, [p.req for p in batch])
                except Exception as e:  # a sampler failure fails this batch, not the server
                    log.exception("batch of %d requests failed", len(batch))
                    self.stats["errors"] += len(batch)
                    results = [RequestError(f"internal error while sampling: {type(e).__name__}: {e}",
                                            status=500, type_="server_error")] * len(batch)
                for p, r in zip(batch, results):
                    if p.future.done():
                        continue
                    if isinstance(r, Exception):
                        p.future.set_exception(r)
                    else:
                        p.future.set_result(r)
        finally:
            for p in self._queue:
                if not p.future.done():
                    p.future.set_exception(RequestError("server shutting down", status=503, type_="server_error"))
            self._queue.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ----- in the sampling thread
    def _maybe_reload(self) -> None:
        step = self.source.newer_than(self.policy.step)
        while step is not None:
            try:
                self.policy = self.source.load_step(step)
                self.stats["reloads"] += 1
                log.info("hot reload: now serving %s", self.policy.model_id)
                return
            except ServeError as e:
                self.stats["reload_failures"] += 1
                log.warning("hot reload: skipping policy step %d: %s", step, e)
            step = self.source.newer_than(self.policy.step)

    def _prompt(self, policy: Policy, req: ChatRequest) -> SampleRequest:
        try:
            ids = chat_prompt_ids(policy.tokenizer, req.messages)
        except Exception as e:  # the template may raise on a conversation it cannot render
            raise RequestError(f"messages cannot be rendered by the chat template: {e}", "messages") from None
        room = policy.context - len(ids)
        if room < 1:
            raise RequestError(f"the prompt has {len(ids)} tokens, the model's context is {policy.context}: "
                               f"shorten messages", "messages")
        max_new = req.max_tokens if req.max_tokens is not None else min(self.default_max_tokens, room)
        if max_new > room:
            key = req.max_tokens_field
            raise RequestError(f"the prompt has {len(ids)} tokens; with {key}={max_new} that exceeds the model's "
                               f"context of {policy.context} tokens (at most {room} new tokens)", key)
        sr = SampleRequest(ids, max_new_tokens=max_new, temperature=req.temperature, top_p=req.top_p, n=req.n,
                           seed=req.seed)
        try:
            check_request(sr, vocab_size=policy.model.config.vocab_size, context=policy.context)
        except SamplingError as e:
            raise RequestError(str(e)) from None
        return sr

    def _serve(self, reqs: list[ChatRequest]) -> list:
        if self.source.kind == "workdir":
            self._maybe_reload()
        policy = self.policy
        out: list = [None] * len(reqs)
        todo: list[tuple[int, SampleRequest]] = []
        for i, req in enumerate(reqs):
            try:
                todo.append((i, self._prompt(policy, req)))
            except RequestError as e:
                out[i] = e
        if not todo:
            return out
        t0 = time.perf_counter()
        res = sample_requests(policy.model, [sr for _, sr in todo], stop_ids=policy.stop_ids)
        self.stats["sampler_s"] += time.perf_counter() - t0
        self.stats["sampler_calls"] += 1
        self.stats["rows"] += sum(sr.n for _, sr in todo)
        self.stats["batch_requests"].append(len(todo))
        for k, (i, sr) in enumerate(todo):
            req = reqs[i]
            choices, used = [], 0
            for j in range(req.n):
                choice, n_used = build_choice(policy.tokenizer, j, res.tokens[k][j], res.logprobs[k][j],
                                              res.finish_reasons[k][j], req)
                choices.append(choice)
                used += n_used
            out[i] = completion_body(policy.model_id, policy.step, choices, len(sr.prompt_ids), used, req.seed)
        return out
