"""A lean HTTP/1.1 server for the local executor servers: httptools parses, an asyncio protocol carries.

Why not aiohttp's web server (which the client side still uses): serving one chat request cost it about
120 us of CPU on a 2-core box, more than the simulated model's own work, while handing each parsed
request straight to a handler costs about 35 us (`launch/bench_sim.py`). The parsing, keep-alive,
chunked bodies and pipelining rules are httptools' (llhttp); this module only hands requests to the
handler and writes replies in order.

A handler takes a `Request` and returns a `Reply`, or an awaitable of one when it must wait (latency,
injected hangs). Replies on one connection go out in the order their requests came, as HTTP/1.1 requires.
"""
from __future__ import annotations

import asyncio
import collections
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Awaitable, Callable, Union

import httptools


@dataclass(slots=True)
class Request:
    method: str
    path: str                                # without the query string
    raw_headers: list[tuple[bytes, bytes]]   # as sent
    body: bytes

    @property
    def headers(self) -> dict[str, str]:
        """Lower-case names (decoded only when asked: most requests never look)."""
        return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.raw_headers}


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"


def json_reply(obj, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, json.dumps(obj).encode(), headers)


Handler = Callable[[Request], Union[Reply, Awaitable[Reply]]]


_STATUS_LINES: dict[int, str] = {}


def _head(reply: Reply, keep_alive: bool) -> bytes:
    status = _STATUS_LINES.get(reply.status)
    if status is None:
        try:
            reason = HTTPStatus(reply.status).phrase
        except ValueError:
            reason = "Unknown"
        status = _STATUS_LINES[reply.status] = f"HTTP/1.1 {reply.status} {reason}\r\n"
    extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers) if reply.headers else ""
    return (f"{status}Content-Type: {reply.content_type}\r\nContent-Length: {len(reply.body)}\r\n{extra}"
            f"{'' if keep_alive else 'Connection: close' + _CRLF}{_CRLF}").encode("latin-1")


_CRLF = "\r\n"


class _Connection(asyncio.Protocol):
    """One client connection: requests parsed as bytes arrive, replies written in request order."""

    def __init__(self, server: "HttpServer"):
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._pending: collections.deque = collections.deque()   # (reply or awaitable, keep_alive)
        self._worker: asyncio.Task | None = None

    # ----- asyncio
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.server.connections.discard(self)
        if self._worker is not None:
            self._worker.cancel()
        for reply, _ in self._pending:
            if asyncio.iscoroutine(reply):
                reply.close()   # never started: no "was never awaited" warning
        self._pending.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(b"upgrades are not supported")
        except httptools.HttpParserError as e:
            self._fail(f"malformed HTTP request: {e}".encode())

    def _fail(self, why: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            body = b'{"error": {"message": %s, "type": "invalid_request_error"}}' % json.dumps(why.decode()).encode()
            reply = Reply(400, body)
            self.transport.write(_head(reply, False) + reply.body)
            self.transport.close()

    # ----- httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._headers, self._body = b"", [], []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        # curl sends "Expect: 100-continue" with bodies over 1 KB and waits a second unless told to go on.
        if len(name) == 6 and name.lower() == b"expect" and value.lower() == b"100-continue":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = Request(self.parser.get_method().decode("latin-1"),
                          self._url.split(b"?", 1)[0].decode("latin-1"), self._headers, b"".join(self._body))
        keep_alive = self.parser.should_keep_alive()
        try:
            reply = self.server.handler(request)
        except Exception as e:  # a handler bug: a loud 500 on this request, the server lives on
            reply = json_reply({"error": {"message": f"server error: {e!r}", "type": "server_error"}}, 500)
        if isinstance(reply, Reply) and not self._pending:
            self._write(reply, keep_alive)
            return
        self._pending.append((reply, keep_alive))
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._drain())

    # ----- replies
    def _write(self, reply: Reply, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(_head(reply, keep_alive) + reply.body)
        if not keep_alive:
            self.transport.close()

    async def _drain(self) -> None:
        try:
            while self._pending:
                reply, keep_alive = self._pending[0]
                if not isinstance(reply, Reply):
                    try:
                        reply = await reply
                    except asyncio.CancelledError:
                        raise
                    except Exception as e:
                        reply = json_reply({"error": {"message": f"server error: {e!r}", "type": "server_error"}},
                                           500)
                self._pending.popleft()
                self._write(reply, keep_alive)
        finally:
            self._worker = None


class HttpServer:
    """`await HttpServer(handler, host, port).start()` ... `await server.close()`."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0, backlog: int = 4096):
        self.handler, self.host, self.port, self.backlog = handler, host, port, backlog
        self.connections: set[_Connection] = set()
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> "HttpServer":
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host, self.port,
                                                backlog=self.backlog)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        await asyncio.sleep(0)   # let connection_lost run
        await self._server.wait_closed()
        self._server = None
