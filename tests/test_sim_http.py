"""The local servers' HTTP layer (w4s_jax/sim/http.py) on a raw socket: what the openai client never sends
but an HTTP/1.1 server must get right (pipelining order, chunked bodies, Expect, Connection: close, garbage)."""
from __future__ import annotations

import json
import socket
import time

import pytest

from w4s_jax.sim import SimServer
from w4s_jax.sim.script import Responder

pytestmark = pytest.mark.timeout(60)


def _post(body: dict, extra: str = "") -> bytes:
    raw = json.dumps(body).encode()
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(raw)}\r\n{extra}\r\n").encode() + raw


def _body(text: str) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def _read_replies(sock: socket.socket, count: int, timeout: float = 10.0) -> list[tuple[int, dict, bytes]]:
    """`count` HTTP replies: (status, headers, body)."""
    sock.settimeout(timeout)
    buf, out = b"", []
    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} replies"
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        if status == 100:
            continue
        n = int(headers["content-length"])
        while len(buf) < n:
            buf += sock.recv(65536)
        out.append((status, headers, buf[:n]))
        buf = buf[n:]
    return out


def _content(body: bytes) -> str:
    return json.loads(body)["choices"][0]["message"]["content"]


@pytest.fixture()
def echo_server():
    with SimServer(lambda req, j: "echo " + req["messages"][-1]["content"]) as srv:
        yield srv


def test_pipelined_requests_get_replies_in_order(echo_server):
    with socket.create_connection(("127.0.0.1", echo_server.port)) as s:
        s.sendall(b"".join(_post(_body(f"q{i}")) for i in range(20)))
        replies = _read_replies(s, 20)
    assert [_content(b) for _, _, b in replies] == [f"echo q{i}" for i in range(20)]


def test_pipelined_replies_keep_order_when_each_waits():
    # With latency every reply is deferred; a later request must still not overtake an earlier one.
    with SimServer(lambda req, j: req["messages"][-1]["content"], latency_s=0.02) as srv:
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(b"".join(_post(_body(f"q{i}")) for i in range(5)))
            replies = _read_replies(s, 5)
    assert [_content(b) for _, _, b in replies] == [f"q{i}" for i in range(5)]


def test_chunked_body_and_expect_continue(echo_server):
    raw = json.dumps(_body("chunked")).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(raw[i:i + 7]), raw[i:i + 7]) for i in range(0, len(raw), 7)) + b"0\r\n\r\n"
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Expect: 100-continue\r\n\r\n")
    with socket.create_connection(("127.0.0.1", echo_server.port)) as s:
        s.sendall(head)
        s.settimeout(5)
        assert s.recv(64).startswith(b"HTTP/1.1 100 Continue")   # told to go on before the body is sent
        s.sendall(chunks)
        [(status, _, body)] = _read_replies(s, 1)
    assert status == 200 and _content(body) == "echo chunked"


def test_connection_close_is_honoured(echo_server):
    with socket.create_connection(("127.0.0.1", echo_server.port)) as s:
        s.sendall(_post(_body("bye"), "Connection: close\r\n"))
        [(status, headers, _)] = _read_replies(s, 1)
        assert status == 200 and headers["connection"] == "close"
        s.settimeout(5)
        assert s.recv(10) == b""                # the server closed its end


def test_garbage_gets_400_and_server_lives_on(echo_server):
    with socket.create_connection(("127.0.0.1", echo_server.port)) as s:
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        [(status, _, body)] = _read_replies(s, 1)
    assert status == 400 and "malformed HTTP request" in json.loads(body)["error"]["message"]
    with socket.create_connection(("127.0.0.1", echo_server.port)) as s:
        s.sendall(_post(_body("still here")))
        [(status, _, body)] = _read_replies(s, 1)
    assert status == 200 and _content(body) == "echo still here"


def test_unknown_route_and_query_string(echo_server):
    with socket.create_connection(("127.0.0.1", echo_server.port)) as s:
        s.sendall(b"GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models?limit=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        (s404, _, b404), (s200, _, b200) = _read_replies(s, 2)
    assert s404 == 404 and "no route GET /v1/nothing" in json.loads(b404)["error"]["message"]
    assert s200 == 200 and json.loads(b200)["object"] == "list"


def test_handler_error_is_a_500_not_a_dead_connection():
    def boom(req, j):
        raise RuntimeError("script bug")
    srv = SimServer(Responder.constant("ok"))
    srv.responder = boom   # a responder that fails: the scripted path reports it as a 400 naming the error
    with srv:
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(_post(_body("x")) + _post(_body("y")))
            replies = _read_replies(s, 2)
    assert [st for st, _, _ in replies] == [400, 400]
    assert all("script bug" in json.loads(b)["error"]["message"] for _, _, b in replies)


def test_stop_with_open_idle_connections_is_prompt(echo_server):
    socks = [socket.create_connection(("127.0.0.1", echo_server.port)) for _ in range(8)]
    try:
        t0 = time.monotonic()
        echo_server.stop()
        assert time.monotonic() - t0 < 5
        for s in socks:
            s.settimeout(5)
            assert s.recv(10) == b""
    finally:
        for s in socks:
            s.close()


def test_handler_exception_is_a_500_and_the_connection_goes_on():
    import asyncio

    from w4s_jax.sim.http import HttpServer, Reply

    calls = []

    def handler(request):
        calls.append(request.path)
        if request.path == "/boom":
            raise ValueError("handler bug")
        return Reply(200, b'{"ok": true}')

    async def main():
        server = await HttpServer(handler).start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\nGET /fine HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while data.count(b"HTTP/1.1 ") < 2 or not data.endswith(b'{"ok": true}'):
                data += await asyncio.wait_for(reader.read(65536), 5)
            writer.close()
            return data
        finally:
            await server.close()

    data = asyncio.run(main())
    assert calls == ["/boom", "/fine"]
    first, second = data.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"500 ") and b"handler bug" in first and second.startswith(b"200 ")
