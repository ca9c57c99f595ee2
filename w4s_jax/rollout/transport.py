"""How one chat-completions POST reaches the executor server and comes back: status, headers, body bytes.

`Executor` owns the retry and error-mapping logic; a transport only moves bytes and classifies failures
that produced no HTTP reply (timeout vs connection). Two transports, both configured by one
`openai.AsyncOpenAI` client (base URL, API key, organization/project, user agent, custom headers):

- "aiohttp" (default): posts through one `aiohttp.ClientSession` with the URL and headers that client
  would send. The SDK's per-call request building (typed options, URL and header models, pydantic) is
  most of the client CPU per call at hundreds of calls in flight (bench_rollout: ~0.5 vs ~1.7 ms/call),
  and on a small box that CPU delays the next wave of requests.
- "sdk-aiohttp" / "sdk-httpx": the SDK's own request path (`client.post`), for servers or auth schemes
  (token providers, Azure) that need the SDK to build each request.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Mapping

import aiohttp
import openai

TRANSPORTS = ("aiohttp", "sdk-aiohttp", "sdk-httpx")


@dataclass
class HttpReply:  # what `post(path, payload, encoded)` returns; `encoded` is the payload's JSON bytes
    status: int
    headers: Mapping[str, str]
    body: bytes


class TransportTimeout(Exception):
    """The server accepted the connection but did not answer in time."""


class TransportConnectionError(Exception):
    """No usable connection: refused, reset, closed mid-reply, or the connect itself timed out."""


def make_client(base_url: str, api_key: str, *, transport: str, max_connections: int,
                timeout_s: float) -> openai.AsyncOpenAI:
    """The SDK client; for the sdk-* transports with the HTTP client they name and a pool for the cap."""
    kw = {}
    if transport.startswith("sdk-"):
        try:  # openai >= 3 ships httpx2, older releases httpx; the limits class has the same shape
            import httpx2 as hx
        except ImportError:
            import httpx as hx
        limits = hx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        timeout = hx.Timeout(timeout_s, connect=min(10.0, timeout_s))
        if transport == "sdk-aiohttp":
            kw["http_client"] = openai.DefaultAioHttpClient(limits=limits, timeout=timeout)
        else:
            kw["http_client"] = openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout)
    # The SDK's own retries stay off: the executor has the one retry layer.
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_s, **kw)


def client_headers(client: openai.AsyncOpenAI) -> dict[str, str]:
    """Headers the SDK sends on every request (auth first, then its defaults and the user's own)."""
    headers = {k: v for k, v in client.auth_headers.items() if isinstance(v, str)}
    headers.update((k, v) for k, v in client.default_headers.items() if isinstance(v, str))
    return headers


class AioHttpTransport:
    def __init__(self, client: openai.AsyncOpenAI, *, max_connections: int, timeout_s: float):
        self.client = client
        self.base = str(client.base_url).rstrip("/") + "/"
        self.headers = client_headers(client)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections),
            timeout=aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(10.0, timeout_s)))

    async def post(self, path: str, payload: dict, encoded: bytes) -> HttpReply:
        try:
            async with self.session.post(self.base + path.lstrip("/"), data=encoded, headers=self.headers) as r:
                return HttpReply(r.status, r.headers, await r.read())
        except aiohttp.ConnectionTimeoutError as e:
            raise TransportConnectionError(f"connect timed out: {e}") from None
        except (asyncio.TimeoutError, TimeoutError) as e:
            raise TransportTimeout(str(e)) from None
        except aiohttp.ClientError as e:
            raise TransportConnectionError(f"{type(e).__name__}: {e}") from None

    async def close(self) -> None:
        await self.session.close()
        await self.client.close()


class SdkTransport:
    def __init__(self, client: openai.AsyncOpenAI):
        self.client = client
        try:
            import httpx2 as hx
        except ImportError:
            import httpx as hx
        self._response_cls = hx.Response

    async def post(self, path: str, payload: dict, encoded: bytes) -> HttpReply:
        del encoded  # the SDK encodes the payload itself
        try:
            # The SDK's documented route for a raw request: no typed-params conversion, no pydantic reply.
            r = await self.client.post(path, body=payload, cast_to=self._response_cls)
            return HttpReply(r.status_code, r.headers, r.content)
        except openai.APIStatusError as e:
            return HttpReply(e.status_code, e.response.headers, e.response.content)
        except openai.APITimeoutError as e:
            if type(e.__cause__).__name__ == "ConnectTimeout":  # the aiohttp adapter reports refusals so
                raise TransportConnectionError(f"connect failed: {e.__cause__}") from None
            raise TransportTimeout(str(e)) from None
        except openai.APIConnectionError as e:
            raise TransportConnectionError(str(e.__cause__ or e)) from None

    async def close(self) -> None:
        await self.client.close()


def open_transport(name: str, base_url: str, api_key: str, *, max_connections: int, timeout_s: float):
    if name not in TRANSPORTS:
        raise ValueError(f"executor transport must be one of {TRANSPORTS}, got {name!r}")
    client = make_client(base_url, api_key, transport=name, max_connections=max_connections, timeout_s=timeout_s)
    if name == "aiohttp":
        return AioHttpTransport(client, max_connections=max_connections, timeout_s=timeout_s)
    return SdkTransport(client)


def error_text(reply: HttpReply, limit: int = 300) -> str:
    """The server's own error message when the body has one (OpenAI shape), else the start of the body."""
    text = reply.body[:4096].decode("utf-8", "replace")
    try:
        err = json.loads(text).get("error")
        msg = err.get("message") if isinstance(err, dict) else err
        if isinstance(msg, str) and msg:
            text = msg
    except (ValueError, AttributeError):
        pass
    text = text.strip() or "(empty body)"
    return text if len(text) <= limit else text[:limit] + "..."
