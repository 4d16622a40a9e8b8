"""A Lua script on the hot path of a request: one EVALSHA on a connection of its own.

redis-py's `Redis.execute_command` takes a pooled connection, polls it for stray data, records
observability counters and wraps the call in a retry closure: about 45 µs of Python per call, more than
the round trip itself. `ScriptRunner` keeps a small LIFO stack of redis-py connections (same class and
settings as the client's pool, so the same parser, timeouts and TLS) and runs one script on them with
nothing else around it. The connections belong to the runner, not to the pool; after a fork the stack
starts empty (a child never reuses its parent's sockets). Their sockets block, with the client's timeout
enforced by the kernel (`_kernel_timeouts`).

Errors: a lost or timed-out connection is closed and raised as StoreUnavailable; the script is loaded
again when Redis has forgotten it (NOSCRIPT: a restart or SCRIPT FLUSH); Redis's own errors (e.g. a
failing script) are raised as redis.ResponseError.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import weakref
from collections.abc import Sequence
from typing import Any

import redis

from bot.errors import StoreUnavailable


class ScriptRunner:
    def __init__(self, client: redis.Redis, source: str, max_idle: int = 64):
        pool = client.connection_pool
        self._connection_class = pool.connection_class
        self._connection_kwargs = dict(pool.connection_kwargs)
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._max_idle = max_idle
        self._idle: list[Any] = []
        _RUNNERS.add(self)

    def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            conn = self._take()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"Redis unreachable: {exc}") from exc
        try:
            try:
                return self._evalsha(conn, keys, args)
            except redis.exceptions.NoScriptError:
                conn.send_packed_command(conn.pack_command("SCRIPT", "LOAD", self.source))
                conn.read_response()
                return self._evalsha(conn, keys, args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            conn.disconnect()
            conn = None
            raise StoreUnavailable(f"Redis unreachable: {exc}") from exc
        except redis.ResponseError:
            raise  # the reply was read in full: the connection stays usable
        except BaseException:
            conn.disconnect()  # interrupted mid-reply: the connection's state is unknown
            conn = None
            raise
        finally:
            if conn is not None and len(self._idle) < self._max_idle:
                self._idle.append(conn)

    def _evalsha(self, conn, keys: Sequence[str], args: Sequence[Any]) -> Any:
        conn.send_packed_command(conn.pack_command("EVALSHA", self.sha, len(keys), *keys, *args))
        return conn.read_response()

    def _take(self):
        try:
            return self._idle.pop()  # list.pop / append are atomic: no lock needed between threads
        except IndexError:
            return self._connect()

    def _connect(self):
        conn = self._connection_class(**self._connection_kwargs)
        conn.connect()
        _kernel_timeouts(conn._sock, conn.socket_timeout)
        return conn

    def close(self) -> None:
        while self._idle:
            self._idle.pop().disconnect()


_RUNNERS: weakref.WeakSet[ScriptRunner] = weakref.WeakSet()


def _forget_parent_connections() -> None:
    for runner in list(_RUNNERS):
        runner._idle = []  # forked: the inherited sockets belong to the parent


os.register_at_fork(after_in_child=_forget_parent_connections)


def _kernel_timeouts(sock: socket.socket, seconds: float | None) -> None:
    """Put a connected socket in blocking mode with the same timeout enforced by the kernel
    (SO_RCVTIMEO / SO_SNDTIMEO). Python's own timeout mode polls before every send and recv: two
    syscalls and two GIL hand-offs per call where one will do, which costs about a tenth of the
    webhook's throughput under load. A kernel timeout surfaces as an OSError, which redis-py raises
    as ConnectionError (→ StoreUnavailable). Left as it is where the options are not available."""
    if sock is None:
        return
    whole = int(seconds or 0)
    timeval = struct.pack("ll", whole, int(((seconds or 0) - whole) * 1_000_000))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    except (OSError, AttributeError):
        return
    sock.settimeout(None)
