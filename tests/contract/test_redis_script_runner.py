"""ScriptRunner against a real Redis server: results, NOSCRIPT recovery, errors, outages and forks."""

from __future__ import annotations

import os
import socket

import pytest
import redis

from bot.errors import StoreUnavailable
from bot.store import RedisStore

_ECHO_INCR = "redis.call('INCRBY', KEYS[1], ARGV[1]); return {redis.call('GET', KEYS[1]), ARGV[2]}"


@pytest.fixture
def store(redis_url):
    s = RedisStore(redis_url)
    yield s
    s.close()


def test_runs_the_script_and_returns_its_reply(store):
    run = store.script_runner(_ECHO_INCR)
    assert run(["chatops:t:counter"], [2, "hello"]) == ["2", "hello"]
    assert run(["chatops:t:counter"], [3, b"bytes too"]) == ["5", "bytes too"]
    assert store.client.get("chatops:t:counter") == "5"


def test_reloads_the_script_after_redis_forgot_it(store):
    run = store.script_runner(_ECHO_INCR)
    run(["chatops:t:c"], [1, "x"])
    store.client.script_flush()
    assert not store.client.script_exists(run.sha)[0]
    assert run(["chatops:t:c"], [1, "y"]) == ["2", "y"]
    assert store.client.script_exists(run.sha)[0]


def test_a_failing_script_raises_and_the_connection_stays_usable(store):
    failing = store.script_runner("return redis.call('INCR', KEYS[1])")
    store.client.set("chatops:t:text", "not a number")
    with pytest.raises(redis.ResponseError):
        failing(["chatops:t:text"], [])
    assert len(failing._idle) == 1  # the reply was read in full: kept for the next call
    assert failing(["chatops:t:n"], []) == 1


def test_unreachable_redis_is_store_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    run = store.script_runner("return 1")
    with pytest.raises(StoreUnavailable, match="Redis unreachable"):
        run([], [])
    assert run._idle == []  # a broken connection is never reused


def test_a_redis_that_stops_answering_times_out_as_store_unavailable(redis_url):
    """The sockets block with a kernel timeout: a server that hangs must still end the call."""
    store = RedisStore(redis_url, timeout=0.3)
    admin = redis.Redis.from_url(redis_url)
    run = store.script_runner("return 1")
    try:
        assert run([], []) == 1
        assert run._idle[0]._sock.gettimeout() is None  # blocking mode: the timeout is the kernel's
        admin.client_pause(3000)  # Redis holds every client's commands for 3 s
        with pytest.raises(StoreUnavailable):
            run([], [])
        assert run._idle == []
    finally:
        admin.client_unpause()
        admin.close()
    assert run([], []) == 1  # and it recovers on a new connection
    store.close()


def test_connections_are_reused_and_capped(store):
    run = store.script_runner("return ARGV[1]")
    for i in range(5):
        assert run([], [str(i)]) == str(i)
    assert len(run._idle) == 1  # one caller at a time needs one connection
    assert run._idle[0]._sock is not None


def test_a_forked_child_opens_its_own_connection(store):
    """A child must never talk on the parent's socket: the two would read each other's replies."""
    run = store.script_runner("return ARGV[1]")
    assert run([], ["parent"]) == "parent"
    parent_conn = run._idle[0]
    pid = os.fork()
    if pid == 0:  # child: exit code 0 only if it got its own reply on a new connection
        ok = False
        try:
            ok = run([], ["child"]) == "child" and run._idle[0] is not parent_conn
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert run([], ["parent again"]) == "parent again"
    assert run._idle[0] is parent_conn


def test_closing_the_store_closes_the_runners_connections(redis_url):
    store = RedisStore(redis_url)
    run = store.script_runner("return 1")
    assert run([], []) == 1
    conn = run._idle[0]
    store.close()
    assert run._idle == [] and conn._sock is None
