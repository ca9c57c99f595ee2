"""Executor: retries, Retry-After, errors, cache and replay, budget, cost, model pinning (real HTTP)."""
from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from test_rollout_support import run
from w4s_jax.rollout import BudgetExceededError, Executor, InfraError, RequestRejectedError
from w4s_jax.rollout.errors import MalformedReplyError
from w4s_jax.rollout.executor import _parse_choices
from w4s_jax.rollout.prices import load_prices, lookup
from w4s_jax.rollout.transport import TRANSPORTS
from w4s_jax.sim import FaultPlan, Responder, SimServer

pytestmark = pytest.mark.timeout(120)
MSG = [{"role": "user", "content": "hello there"}]


def _counter_responder():
    """Every choice gets a new number: shows which answers came from where."""
    c = itertools.count()
    return lambda body, j: f"reply-{next(c)}"


each_transport = pytest.mark.parametrize("transport", TRANSPORTS)


def _ex(srv, **kw):
    kw.setdefault("backoff_base_s", 0.01)
    kw.setdefault("backoff_max_s", 0.2)
    return Executor(srv.base_url, model="sim", **kw)


@each_transport
def test_mixed_faults_are_retried_until_success(transport):
    with SimServer(Responder.constant("fine"), faults=FaultPlan(rate=0.3, seed=1, hang_s=2.0,
                                                                  retry_after_s=0.01)) as srv:
        async def go():
            async with _ex(srv, transport=transport, request_timeout_s=0.4, max_retries=15) as ex:
                res = await asyncio.gather(*[ex.chat([{"role": "user", "content": f"q{i}"}]) for i in range(60)])
                return res, ex.stats
        res, stats = run(go())
        assert all(r.contents == ["fine"] for r in res)
        assert stats.calls == 60 and stats.retries == stats.http_requests - 60 > 0
        assert all(srv.stats[k] > 0 for k in ("429", "500", "timeout", "truncated")), srv.stats


@each_transport
def test_retry_after_is_honoured_and_exhaustion_is_infra(transport):
    with SimServer(faults=FaultPlan(rate=1.0, kinds=("429",), retry_after_s=0.3)) as srv:
        async def go():
            async with _ex(srv, transport=transport, max_retries=2, backoff_max_s=5.0) as ex:
                t = time.perf_counter()
                with pytest.raises(InfraError) as ei:
                    await ex.chat(MSG)
                return time.perf_counter() - t, ei.value, ex.stats
        dt, err, stats = run(go())
    assert err.kind == "rate_limit" and "HTTP 429 after 3 attempts" in str(err)
    assert dt >= 0.6 and stats.http_requests == 3 and stats.infra_errors == 1


@each_transport
def test_truncated_body_is_retried_then_reported_as_malformed(transport):
    with SimServer(faults=FaultPlan(rate=1.0, kinds=("truncated",))) as srv:
        async def go():
            async with _ex(srv, transport=transport, max_retries=1) as ex:
                await ex.chat(MSG)
        with pytest.raises(MalformedReplyError, match="is not valid JSON"):
            run(go())
        assert srv.stats["truncated"] == 2


@each_transport
def test_timeouts_and_connection_errors_are_infra(transport):
    with SimServer(faults=FaultPlan(rate=1.0, kinds=("timeout",), hang_s=5)) as srv:
        async def go():
            async with _ex(srv, transport=transport, max_retries=1, request_timeout_s=0.3) as ex:
                await ex.chat(MSG)
        with pytest.raises(InfraError, match="timed out") as ei:
            run(go())
        assert ei.value.kind == "timeout"

    async def refused():
        async with Executor("http://127.0.0.1:9/v1", model="sim", transport=transport, max_retries=1, backoff_base_s=0.01) as ex:
            await ex.chat(MSG)
    with pytest.raises(InfraError, match="connection failed") as ei:
        run(refused())
    assert ei.value.kind == "connection"


@each_transport
def test_bad_request_is_rejected_without_retry(transport):
    with SimServer() as srv:
        async def go():
            async with _ex(srv, transport=transport) as ex:
                with pytest.raises(RequestRejectedError, match="HTTP 400"):
                    await ex.chat(MSG, n=500)
                return ex.stats
        stats = run(go())
        assert stats.http_requests == 1 and stats.rejected == 1 and stats.infra_errors == 0


def test_samples_at_positive_temperature_stay_distinct_and_replay_exactly(tmp_path):
    cache = str(tmp_path / "c.sqlite")

    async def session(srv):
        async with _ex(srv, cache_path=cache) as ex:
            out = [(await ex.chat(MSG, temperature=0.7, n=2)).contents for _ in range(3)]
            out.append((await ex.chat(MSG, temperature=0.0)).contents)
            out.append((await ex.chat(MSG, temperature=0.0)).contents)  # greedy repeat: same answer
            ex.close_cache()
            return out, ex.stats
    with SimServer(_counter_responder()) as srv:
        first, stats = run(session(srv))
        assert srv.stats["requests"] == 4
    assert first[:3] == [["reply-0", "reply-1"], ["reply-2", "reply-3"], ["reply-4", "reply-5"]]
    assert first[3] == first[4] == ["reply-6"]
    with SimServer(_counter_responder()) as srv2:
        second, stats2 = run(session(srv2))
        assert srv2.stats["requests"] == 0
    assert second == first and stats2.cache_hits == 5


def test_identical_greedy_requests_in_flight_share_one_call():
    with SimServer(_counter_responder(), latency_s=0.2) as srv:
        async def go():
            async with _ex(srv) as ex:
                return await asyncio.gather(*[ex.chat(MSG, temperature=0) for _ in range(8)])
        res = run(go())
        assert srv.stats["requests"] == 1 and all(r.contents == ["reply-0"] for r in res)


def test_cost_accounting_with_the_price_table():
    with SimServer(Responder.constant("one two three")) as srv:
        async def go():
            async with Executor(srv.base_url, model="gpt-4o-mini-2024-07-18") as ex:
                r = await ex.chat(MSG, n=2)
                return r, ex.spent_usd, ex.stats
        r, spent, stats = run(go())
    assert r.usage.prompt_tokens == 2 and r.usage.completion_tokens == 6
    assert r.usage.cost_usd == pytest.approx((2 * 0.15 + 6 * 0.60) / 1e6)
    assert spent == r.usage.cost_usd and stats.usage.completion_tokens == 6


def test_budget_cap_is_exceeded_by_at_most_the_calls_in_flight():
    prices = {"sim": (1e6, 1e6, 0.0)}  # $1 per prompt token; every call here costs $2
    with SimServer(latency_s=0.05) as srv:
        async def go():
            async with _ex(srv, budget_usd=21.0, price_table=prices, max_concurrency=4) as ex:
                res = await asyncio.gather(*[ex.chat([{"role": "user", "content": f"q {i}"}]) for i in range(40)],
                                           return_exceptions=True)
                with pytest.raises(BudgetExceededError, match="budget of"):
                    await ex.chat(MSG)
                return res, ex.spent_usd
        res, spent = run(go())
        ok = [r for r in res if not isinstance(r, Exception)]
        assert all(isinstance(r, BudgetExceededError) for r in res if isinstance(r, Exception))
        assert 21.0 <= spent <= 21.0 + 4 * 2.0 and spent == 2.0 * len(ok)
        assert srv.stats["requests"] == len(ok)


def test_budget_needs_a_known_price():
    with pytest.raises(ValueError, match="no price"):
        Executor("http://127.0.0.1:9/v1", model="mystery-model", budget_usd=1.0)


def test_model_is_decided_by_config():
    with SimServer() as srv:
        srv.log_requests = True

        async def go():
            async with Executor(srv.base_url, model="sim-default", model_map={"gpt-4o": "sim-big"}) as ex:
                await ex.chat(MSG, model="gpt-4o-mini")
                await ex.chat(MSG, model="gpt-4o")
        run(go())
        assert [b["model"] for b in srv.requests_log] == ["sim-default", "sim-big"]


def test_api_key_comes_from_the_named_variable(monkeypatch):
    monkeypatch.delenv("W4S_NO_SUCH_KEY", raising=False)
    with pytest.raises(ValueError, match="W4S_NO_SUCH_KEY"):
        Executor("https://api.example.com/v1", model="gpt-4o", api_key_env="W4S_NO_SUCH_KEY")
    monkeypatch.setenv("W4S_NO_SUCH_KEY", "sk-x")
    Executor("https://api.example.com/v1", model="gpt-4o", api_key_env="W4S_NO_SUCH_KEY")


def test_bad_executor_options_are_refused_by_name():
    with pytest.raises(ValueError, match="transport must be one of .*'aiohttp'.*got 'curl'"):
        Executor("http://127.0.0.1:9/v1", model="sim", transport="curl")
    with pytest.raises(ValueError, match="max_concurrency must be >= 1"):
        Executor("http://127.0.0.1:9/v1", model="sim", max_concurrency=0)


def test_error_replies_quote_the_servers_message():
    """The server's own error text (OpenAI shape) reaches the caller, on every transport."""
    from w4s_jax.rollout.transport import HttpReply, error_text
    assert error_text(HttpReply(400, {}, b'{"error": {"message": "max_tokens is too large"}}')) == \
        "max_tokens is too large"
    assert error_text(HttpReply(502, {}, b"<html>bad gateway</html>")) == "<html>bad gateway</html>"
    assert error_text(HttpReply(500, {}, b"")) == "(empty body)"
    assert error_text(HttpReply(500, {}, b"x" * 1000)).endswith("...")


def test_malformed_reply_shapes_name_what_is_wrong():
    with pytest.raises(MalformedReplyError, match="'choices' missing"):
        _parse_choices({"id": 1}, "srv", 1)
    with pytest.raises(MalformedReplyError, match=r"choices\[0\].message missing"):
        _parse_choices({"choices": [{}]}, "srv", 1)
    with pytest.raises(MalformedReplyError, match="asked for 2 choices, got 1"):
        _parse_choices({"choices": [{"message": {"content": "a"}}]}, "srv", 2)
    assert _parse_choices({"choices": [{"index": 1, "message": {"content": "b"}},
                                       {"index": 0, "message": {"content": None}}]}, "srv", 2) == ["", "b"]


def test_price_lookup_and_user_table(tmp_path):
    assert lookup("gpt-4o-mini-2024-07-18").input == 0.15
    assert lookup("gpt-4o-2024-08-06").output == 10.0
    assert lookup("unknown") is None
    p = tmp_path / "p.json"
    p.write_text('{"my-model": [1, 0.5, 2]}')
    assert lookup("my-model", load_prices(p)).cached_input == 0.5
    p.write_text('{"my-model": [1, 2]}')
    with pytest.raises(ValueError, match="my-model"):
        load_prices(p)


def test_corrupt_cache_file_is_named(tmp_path):
    bad = tmp_path / "cache.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="cache.sqlite"):
        Executor("http://127.0.0.1:9/v1", model="sim", cache_path=str(bad))


def test_requests_per_minute_limit_paces_calls():
    # aiolimiter lets a minute's quota through at once, then refills at rpm/60 per second.
    with SimServer() as srv:
        async def go(rpm):
            async with _ex(srv, rpm=rpm) as ex:
                t = time.perf_counter()
                await asyncio.gather(*[ex.chat([{"role": "user", "content": f"r{i}"}]) for i in range(124)])
                return time.perf_counter() - t
        assert run(go(120)) >= 1.4  # 4 calls beyond the burst at 2 per second


def test_cache_is_sqlite_in_wal_mode(tmp_path):
    import sqlite3
    from w4s_jax.rollout.cache import ResponseCache
    c = ResponseCache(tmp_path / "x.sqlite")
    c.put("h", 0, {"contents": ["a"]})
    c.put("h", 1, {"contents": ["b"]})
    assert c.get("h", 1) == {"contents": ["b"]} and c.get("h", 2) is None
    c.close()
    db = sqlite3.connect(tmp_path / "x.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 2


def test_cancelled_owner_of_a_shared_greedy_call_does_not_fail_the_others():
    with SimServer(_counter_responder(), latency_s=0.3) as srv:
        async def go():
            async with _ex(srv) as ex:
                owner = asyncio.ensure_future(ex.chat(MSG, temperature=0))
                await asyncio.sleep(0.05)
                waiter = asyncio.ensure_future(ex.chat(MSG, temperature=0))
                await asyncio.sleep(0.05)
                owner.cancel()
                return await waiter
        res = run(go())
        assert res.contents in (["reply-0"], ["reply-1"]) and srv.stats["requests"] == 2


def test_direct_transport_sends_the_sdk_headers_and_body(monkeypatch):
    """The aiohttp transport must look to the server like the SDK: same auth, org/project, identity, body."""
    monkeypatch.setenv("W4S_TEST_KEY", "sk-test-123")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-abc")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-xyz")
    seen = {}
    with SimServer(Responder.constant("ok")) as srv:
        srv.log_requests = True
        for transport in TRANSPORTS:
            async def go():
                async with _ex(srv, transport=transport, api_key_env="W4S_TEST_KEY") as ex:
                    return await ex.chat(MSG, temperature=0.0, response_format="json_object")
            assert run(go()).contents == ["ok"]
            seen[transport] = (srv.headers_log[-1], srv.requests_log[-1])
    sdk_headers, sdk_body = seen["sdk-httpx"]
    for transport, (headers, body) in seen.items():
        assert body == sdk_body, transport
        assert headers["authorization"] == "Bearer sk-test-123", transport
        assert headers["openai-organization"] == "org-abc" and headers["openai-project"] == "proj-xyz", transport
        assert headers["content-type"] == "application/json", transport
        assert headers["user-agent"] == sdk_headers["user-agent"], transport


def test_sample_scopes_keep_replays_exact_whatever_the_order(tmp_path):
    """Two callers send the same sampled request; in the replay they come in the other order."""
    cache = str(tmp_path / "c.sqlite")

    async def session(srv, order):
        async with _ex(srv, cache_path=cache) as ex:
            out = {}
            for scope in order:
                out[scope] = (await ex.chat(MSG, temperature=1.0, sample_scope=scope)).contents
            out["again-a"] = (await ex.chat(MSG, temperature=1.0, sample_scope="a")).contents
            ex.close_cache()
            return out
    with SimServer(_counter_responder()) as srv:
        first = run(session(srv, ["a", "b"]))
    assert first == {"a": ["reply-0"], "b": ["reply-1"], "again-a": ["reply-2"]}
    with SimServer(_counter_responder()) as srv2:
        replay = run(session(srv2, ["b", "a"]))
        assert srv2.stats["requests"] == 0
    assert replay == first


def test_request_and_token_rate_limits_pace_the_calls():
    """aiolimiter buckets: `rpm` requests (or `tpm` estimated tokens) at once, then the rate per second."""
    with SimServer(Responder.constant("ok")) as srv:
        async def go(**limits):
            async with _ex(srv, **limits) as ex:
                t = time.perf_counter()
                msgs = [[{"role": "user", "content": f"q{i}"}] for i in range(62)]
                await asyncio.gather(*[ex.chat(m, max_completion_tokens=100) for m in msgs])
                return time.perf_counter() - t
        # 60 requests per minute: 60 at once, then one a second -> the 62nd after about 2 s
        assert 1.8 <= run(go(rpm=60)) < 10
        # 6000 tokens per minute at ~100 estimated tokens a call: about 60 at once, then one a second
        assert 1.8 <= run(go(tpm=6000)) < 10
        assert run(go()) < 1.0
