"""The OpenAI-compatible HTTP server over the sampler: `/v1/chat/completions`, `/v1/models`, `/stats`.

It runs in a background thread of the caller (`PolicyServer(...).start()`, or `with PolicyServer(...) as s`)
or in its own process (`python -m w4s_jax.serve --model=PATH`, which prints `LISTENING <port>` once the
model is loaded and the port bound, and exits when its stdin closes). The model is loaded before the server
listens, so a bad PATH, tokenizer or option fails at start with one ServeError naming it. Loopback by default.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import threading
from typing import Callable

from aiohttp import web

from w4s_jax.serve.engine import Engine
from w4s_jax.serve.policy import DTYPES, PolicySource, ServeError, parse_mesh
from w4s_jax.serve.protocol import RequestError, parse_request

log = logging.getLogger(__name__)


def _error(e: RequestError) -> web.Response:
    return web.json_response(e.body(), status=e.status)


class PolicyServer:
    """Serve PATH (an HF checkpoint directory, a policy export or a trainer workdir) over HTTP.

    `base_url` is what an OpenAI client takes; `stats` counts requests, sampler calls, rows and reloads;
    `model_id` names what is served now ("policy/<step>" for policies)."""

    def __init__(self, model: str, *, host: str = "127.0.0.1", port: int = 0, dtype: str = "auto",
                 max_batch: int = 128, mesh: str | None = None, tokenizer: str | None = None,
                 batch_wait_ms: float = 5.0, reload_poll_s: float = 2.0, default_max_tokens: int = 2048,
                 served_model_name: str | None = None):
        self.model_path, self.host, self.port = model, host, port
        self._options = dict(dtype=dtype, mesh=mesh, tokenizer=tokenizer, served_model_name=served_model_name)
        self._engine_options = dict(max_batch=max_batch, batch_wait_s=batch_wait_ms / 1000.0,
                                    reload_poll_s=reload_poll_s, default_max_tokens=default_max_tokens)
        self.engine: Engine | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # ----- properties
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model_id(self) -> str:
        return self.engine.policy.model_id

    @property
    def stats(self) -> dict:
        s = dict(self.engine.stats)
        s["batch_requests"] = list(s["batch_requests"])
        s["model"] = self.engine.policy.model_id
        s["policy_step"] = self.engine.policy.step
        return s

    def load(self) -> Engine:
        """Resolve and load the model (ServeError on bad input); done by start() if not before."""
        if self.engine is None:
            opts = dict(self._options)
            source = PolicySource(self.model_path, dtype=opts["dtype"], mesh=parse_mesh(opts["mesh"]),
                                  tokenizer=opts["tokenizer"], served_model_name=opts["served_model_name"])
            self.engine = Engine(source, **self._engine_options)
        return self.engine

    # ----- HTTP handlers
    async def _chat(self, request: web.Request) -> web.Response:
        try:
            try:
                body = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise RequestError("the request body is not valid JSON") from None
            req = parse_request(body, max_n=self.engine.max_batch)
            return web.json_response(await self.engine.submit(req))
        except RequestError as e:
            return _error(e)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": self.engine.policy.model_id, "object": "model", "created": 0, "owned_by": "w4s-jax"}]})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats)

    # ----- lifecycle
    async def serve(self, on_ready: Callable[[int], None] | None = None) -> None:
        """Run until `stop()` (or the task is cancelled)."""
        self.load()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/stats", self._stats)
        runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await runner.setup()
        batcher = asyncio.create_task(self.engine.run())
        try:
            site = web.TCPSite(runner, self.host, self.port, backlog=1024)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]
            self._stop = asyncio.Event()
            if on_ready:
                on_ready(self.port)
            await self._stop.wait()
        finally:
            batcher.cancel()
            await asyncio.gather(batcher, return_exceptions=True)
            await runner.cleanup()
            self.engine.close()

    def start(self) -> "PolicyServer":
        self.load()  # in the caller's thread: bad input raises ServeError here

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self.serve(lambda _p: self._ready.set()))
            except BaseException as e:  # surfaced by start()
                self._error = e
                self._ready.set()
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="policy-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(60) or self._error is not None:
            raise RuntimeError(f"PolicyServer failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass  # loop already closed
            self._thread.join(60)

    def __enter__(self) -> "PolicyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m w4s_jax.serve",
                                description="OpenAI-compatible chat server over the JAX sampler")
    p.add_argument("--model", required=True,
                   help="an HF checkpoint directory, a policy export <workdir>/policy/<step>, or a trainer workdir "
                        "(serves its newest complete policy step and reloads newer ones)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (loopback by default)")
    p.add_argument("--port", type=int, default=0, help="0 = a free port (printed as LISTENING <port>)")
    p.add_argument("--dtype", default="auto", choices=DTYPES, help="parameter and compute dtype (auto = as stored)")
    p.add_argument("--max_batch", type=int, default=128, help="most sample rows (sum of n) in one sampler call")
    p.add_argument("--mesh", default=None, help="device mesh, e.g. tensor=8 or data=2,tensor=4 (sampling "
                                                "sharding rules: weights over tensor, batch rows over data/fsdp)")
    p.add_argument("--tokenizer", default=None, help="tokenizer directory (default: next to the model)")
    p.add_argument("--batch_wait_ms", type=float, default=5.0,
                   help="after an idle spell, wait this long for more requests before sampling")
    p.add_argument("--reload_poll_s", type=float, default=2.0, help="workdir: look for new steps this often when idle")
    p.add_argument("--default_max_tokens", type=int, default=2048,
                   help="new-token budget of requests that set neither max_tokens nor max_completion_tokens")
    p.add_argument("--served_model_name", default=None, help="name in replies (default: the directory name, or "
                                                             "policy/<step>)")
    return p


def main(argv: list[str] | None = None) -> None:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    srv = PolicyServer(a.model, host=a.host, port=a.port, dtype=a.dtype, max_batch=a.max_batch, mesh=a.mesh,
                       tokenizer=a.tokenizer, batch_wait_ms=a.batch_wait_ms, reload_poll_s=a.reload_poll_s,
                       default_max_tokens=a.default_max_tokens, served_model_name=a.served_model_name)
    try:
        srv.load()
    except ServeError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None

    async def run():
        loop = asyncio.get_running_loop()

        def ready(port):
            print(f"LISTENING {port}", flush=True)
            # Parent gone (stdin closed) -> stop: a parent that dies never leaves a server behind.
            loop.add_reader(sys.stdin.fileno(), lambda: (sys.stdin.buffer.read1(65536) or srv._stop.set()))

        await srv.serve(ready)

    asyncio.run(run())
