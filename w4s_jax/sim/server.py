"""A local OpenAI-compatible chat-completions server with scripted replies and fault injection.

Real HTTP on 127.0.0.1 (http.py), so tests and benchmarks exercise the actual `openai` client. It runs
either in a background thread of the caller (`SimServer(...).start()`), or in its own process
(`python -m w4s_jax.sim ...`, which prints `LISTENING <port>` and exits when its stdin closes),
and always stops by itself after `max_lifetime_s`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from .http import HttpServer, Reply, Request, json_reply
from .request import message_text
from .script import Responder, load_script
from .validation import RequestError, unparsable_body, validate_request

FAULT_KINDS = ("429", "500", "timeout", "truncated")


@dataclass
class FaultPlan:
    """Each request fails with probability `rate`, the kind drawn uniformly from `kinds` (seeded)."""
    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    retry_after_s: float = 0.05   # sent with 429s
    hang_s: float = 30.0          # a "timeout" sleeps this long before answering

    def __post_init__(self):
        bad = [k for k in self.kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"FaultPlan: unknown fault kinds {bad}; known: {FAULT_KINDS}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"FaultPlan: rate must be in [0, 1], got {self.rate}")


def _count_tokens(text: str) -> int:
    return max(1, len(text.split()))  # deterministic stand-in for a tokenizer


class SimServer:
    def __init__(self, responder: Responder | Callable | None = None, *, latency_s: float = 0.0,
                 faults: FaultPlan | None = None, host: str = "127.0.0.1", port: int = 0,
                 max_lifetime_s: float = 900.0):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("SimServer only listens on loopback")
        self.responder = responder if responder is not None else Responder.constant("ok")
        # A simulated model answers whole requests and serves named models only; a script answers any name.
        self._complete = getattr(self.responder, "complete", None)
        self.models: tuple[str, ...] | None = getattr(self.responder, "models", None)
        self.latency_s = latency_s
        self.faults = faults or FaultPlan()
        self.host, self.port = host, port
        self.max_lifetime_s = max_lifetime_s
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self.stats: dict[str, int] = {"requests": 0, "ok": 0, "429": 0, "500": 0, "timeout": 0,
                                      "truncated": 0, "bad_request": 0}
        self.requests_log: list[dict] = []   # request bodies, for tests that inspect what was sent
        self.headers_log: list[dict] = []    # and their headers (lower-case names)
        self.log_requests = False
        self._prompt_tokens: dict[bytes, int] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def _bump(self, key: str) -> None:
        with self._lock:
            self.stats[key] = self.stats.get(key, 0) + 1

    def _pick_fault(self) -> str | None:
        with self._lock:
            if self.faults.rate > 0 and self._rng.random() < self.faults.rate:
                return self._rng.choice(self.faults.kinds)
        return None

    # ----- HTTP handlers (synchronous unless the reply must wait: see http.py)
    def _chat(self, request: Request) -> Reply | Awaitable[Reply]:
        self._bump("requests")
        raw = request.body   # no size cap (a long debate transcript is fine)
        try:
            try:
                body = json.loads(raw)
            except ValueError:
                raise unparsable_body() from None
            validate_request(body, self.models)
        except RequestError as e:
            self._bump("bad_request")
            return json_reply(e.body, e.status)
        if self.log_requests:
            with self._lock:
                self.requests_log.append(body)
                self.headers_log.append(dict(request.headers))
        fault = self._pick_fault()
        if self.latency_s > 0 or fault is not None:
            return self._delayed(body, raw, fault)
        return self._answer(body, raw, fault)

    async def _delayed(self, body: dict, raw: bytes, fault: str | None) -> Reply:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        if fault == "429":
            self._bump("429")
            return json_reply({"error": {"message": "rate limited (injected)", "type": "rate_limit"}}, 429,
                              (("Retry-After", f"{self.faults.retry_after_s:g}"),))
        if fault == "500":
            self._bump("500")
            return json_reply({"error": {"message": "server error (injected)"}}, 500)
        if fault == "timeout":
            self._bump("timeout")
            await asyncio.sleep(self.faults.hang_s)
        return self._answer(body, raw, fault)

    def _answer(self, body: dict, raw: bytes, fault: str | None) -> Reply:
        try:
            if self._complete is not None:
                replies = self._complete(body, raw)
            else:
                replies = [self.responder(body, j) for j in range(int(body.get("n") or 1))]
        except Exception as e:  # a broken script is the test author's bug: make it loud, not a retryable 500
            self._bump("bad_request")
            return json_reply({"error": {"message": f"sim script failed: {e!r}"}}, 400)
        prompt_tokens = self._prompt_tokens.get(raw)
        if prompt_tokens is None:   # requests repeat (samples sent as separate calls): count each text once
            if len(self._prompt_tokens) >= 1 << 14:
                self._prompt_tokens.clear()
            prompt_tokens = self._prompt_tokens[raw] = sum(_count_tokens(message_text(m.get("content")))
                                                           for m in body["messages"])
        completion_tokens = sum(_count_tokens(r) for r in replies)
        # Written out directly (the strings through the C JSON encoder): this runs for every request.
        choices = ", ".join('{"index": %d, "message": {"role": "assistant", "content": %s}, "finish_reason": "stop"}'
                            % (j, json.dumps(r)) for j, r in enumerate(replies))
        text = ('{"id": "chatcmpl-sim-%d", "object": "chat.completion", "created": %d, "model": %s, "choices": [%s], '
                '"usage": {"prompt_tokens": %d, "completion_tokens": %d, "total_tokens": %d, '
                '"prompt_tokens_details": {"cached_tokens": 0}}}'
                % (self.stats["requests"], int(time.time()), json.dumps(str(body.get("model", "sim"))), choices,
                   prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)).encode()
        if fault == "truncated":
            self._bump("truncated")
            return Reply(200, text[: len(text) // 2])
        self._bump("ok")
        return Reply(200, text)

    def _stats(self, request: Request) -> Reply:
        with self._lock:
            return json_reply(dict(self.stats))

    def _models(self, request: Request) -> Reply:
        return json_reply({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "w4s-jax"}
                                                      for m in (self.models or ("sim",))]})

    # ----- lifecycle
    def _dispatch(self, request: Request) -> Reply | Awaitable[Reply]:
        route = self._routes.get((request.method, request.path))
        if route is None:
            return json_reply({"error": {"message": f"no route {request.method} {request.path}",
                                         "type": "invalid_request_error"}}, 404)
        return route(request)

    async def serve(self, on_ready: Callable[[int], None] | None = None) -> None:
        self._routes = {("POST", "/v1/chat/completions"): self._chat, ("GET", "/v1/models"): self._models,
                        ("GET", "/stats"): self._stats}
        http = await HttpServer(self._dispatch, self.host, self.port).start()
        self.port = http.port
        self._stop = asyncio.Event()
        if on_ready:
            on_ready(self.port)
        try:
            await asyncio.wait_for(self._stop.wait(), self.max_lifetime_s)
        except asyncio.TimeoutError:
            pass
        finally:
            await http.close()

    def start(self) -> "SimServer":
        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self.serve(lambda _p: self._ready.set()))
            except BaseException as e:  # surfaced by start()
                self._error = e
                self._ready.set()
            finally:
                # Handlers still sleeping (injected hangs) are cancelled, not left for the GC to complain about.
                pending = asyncio.all_tasks(self._loop)
                for t in pending:
                    t.cancel()
                if pending:
                    self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self._loop.close()

        self._thread = threading.Thread(target=run, name="sim-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"SimServer failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass  # loop already closed: the server ended by itself
            self._thread.join(10)

    def __enter__(self) -> "SimServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def simulated_server(task, *, data_dir: str | None = None, seed: int = 0, latency_s: float = 0.0,
                     faults: FaultPlan | None = None, port: int = 0, max_lifetime_s: float = 900.0) -> SimServer:
    """The simulated strong model of `task` (a registered name or a task object) behind a SimServer
    (not started: `with simulated_server("synth_arith") as srv: ...`)."""
    from .simulated import SimulatedModel
    model = SimulatedModel.for_task(task, data_dir=data_dir, seed=seed)
    return SimServer(model, latency_s=latency_s, faults=faults, port=port, max_lifetime_s=max_lifetime_s)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="OpenAI-compatible simulated executor on 127.0.0.1: the simulated "
                                            "strong model of a task (--simulate) or scripted replies")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--simulate", default=None, metavar="TASK",
                   help="serve the simulated strong model (model name 'sim-strong') for this task's items")
    p.add_argument("--data_dir", "--data-dir", dest="data_dir", default=None,
                   help="where the task's local files are (default $W4S_DATA_DIR)")
    p.add_argument("--latency_s", "--latency", dest="latency", type=float, default=0.0,
                   help="seconds before each reply")
    p.add_argument("--script", default=None, help="JSON script file (see w4s_jax/sim/script.py)")
    p.add_argument("--reply", default=None, help="constant reply when neither --simulate nor --script is given")
    p.add_argument("--fault-rate", "--fault_rate", dest="fault_rate", type=float, default=0.0)
    p.add_argument("--fault-kinds", "--fault_kinds", dest="fault_kinds", default=",".join(FAULT_KINDS))
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated model and of the fault plan")
    p.add_argument("--max-lifetime", "--max_lifetime_s", dest="max_lifetime", type=float, default=900.0)
    a = p.parse_args(argv)
    if sum(x is not None for x in (a.simulate, a.script, a.reply)) > 1:
        p.error("give at most one of --simulate, --script and --reply")
    faults = FaultPlan(rate=a.fault_rate, kinds=tuple(k for k in a.fault_kinds.split(",") if k), seed=a.seed)
    if a.simulate:
        try:
            srv = simulated_server(a.simulate, data_dir=a.data_dir, seed=a.seed, latency_s=a.latency, faults=faults,
                                   port=a.port, max_lifetime_s=a.max_lifetime)
        except (KeyError, ValueError, OSError) as e:
            p.exit(2, f"python -m w4s_jax.sim: cannot simulate task {a.simulate!r}: {e}\n")
    else:
        responder = load_script(a.script) if a.script else Responder.constant(a.reply if a.reply is not None else "ok")
        srv = SimServer(responder, latency_s=a.latency, faults=faults, port=a.port, max_lifetime_s=a.max_lifetime)

    async def run():
        loop = asyncio.get_running_loop()

        def ready(port):
            print(f"LISTENING {port}", flush=True)
            # Parent gone (stdin closed) -> stop: a benchmark that dies never leaves a server behind.
            loop.add_reader(sys.stdin.fileno(), lambda: (sys.stdin.buffer.read1(65536) or srv._stop.set()))

        await srv.serve(ready)

    asyncio.run(run())


if __name__ == "__main__":
    main()
