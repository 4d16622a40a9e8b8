"""The conventional PagerDuty webhook receiver: what a team writes by hand on the same gunicorn stack.

Per delivery: verify `X-PagerDuty-Signature` (any `v1=<hex HMAC-SHA256>` entry under any of the
secrets), parse the JSON, `SET NX` the event id in Redis (7 days), and — in a second round trip — put
the event on the task queue; answer 202 (200 for a duplicate, 503 when Redis is away: the key is
deleted again if the enqueue failed, so PagerDuty's retry is admitted). One event at a time: no group
commit, no Lua of its own.

Its known weakness: a process that dies between the two round trips leaves the event marked but never
enqueued, and PagerDuty's redelivery is then dropped as a duplicate (the bot admits both in one atomic
call). A team that notices adds a pending/done state, which is a third round trip.

The queue (`PEER_QUEUE`):
- `huey` (default): the bot's own task queue on the same Redis, its ordinary `enqueue` of the same job
  (`pagerduty.webhook_effect` with the delivery body), so the same `chatops worker` drains it — as the
  team's web code would call the task its worker module defines;
- `dramatiq`: Dramatiq's RedisBroker (`send` is one Lua call of the broker's) with the delivery body,
  drained by the actor in bench/baselines/webhook_dramatiq.py (the bot's own effect, run by Dramatiq).

It is a plain WSGI function rather than a Flask or Bolt app: a framework would only add its own cost per
request, and the comparison is about the admission path. Redis: one client (a keep-alive connection
pool) per process, shared by the dedupe and the queue.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import redis

PATH = "/pagerduty/webhook"
DEDUPE_TTL = 7 * 86400
EFFECT_JOB = "pagerduty.webhook_effect"


def signature_ok(body: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    if not header:
        return False
    offered = [p.strip()[3:] for p in header.split(",") if p.strip().startswith("v1=")]
    for secret in secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, sig) for sig in offered):
            return True
    return False


def _huey_queue(url: str) -> tuple[redis.Redis, Callable[[bytes, str | None, dict], None]]:
    from bot.queue import TaskQueue
    from bot.registry import Registry

    data_dir = Path(os.environ.get("CHATOPS_DATA_DIR") or tempfile.gettempdir())
    queue = TaskQueue(url, data_dir, Registry.discover())

    def send(body: bytes, webhook_id: str | None, event: dict) -> None:
        queue.enqueue(EFFECT_JOB, delivery=body, webhook_id=webhook_id, index=0)

    return queue.huey.storage.conn, send


def _dramatiq_queue(url: str) -> tuple[redis.Redis, Callable[[bytes, str | None, dict], None]]:
    from bench.baselines import webhook_dramatiq  # its broker is on REDIS_URL, as `url` is

    def send(body: bytes, webhook_id: str | None, event: dict) -> None:
        webhook_dramatiq.post_effect.send(body.decode(), webhook_id)

    return webhook_dramatiq.client, send


def _answer(start_response, status: str, body: bytes = b"{}"):
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def create_app():
    """The gunicorn factory: `bench.baselines.webhook_receiver:create_app()`."""
    url = os.environ["REDIS_URL"]
    secrets = [s.strip().encode() for s in os.environ.get("PAGERDUTY_WEBHOOK_SECRETS", "").split(",") if s]
    kind = os.environ.get("PEER_QUEUE", "huey")
    client, send = _dramatiq_queue(url) if kind == "dramatiq" else _huey_queue(url)

    def app(environ, start_response):
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == "/healthz":
            return _answer(start_response, "200 OK")
        if path != PATH or method != "POST":
            return _answer(start_response, "404 Not Found")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > 256 * 1024:
            return _answer(start_response, "413 Payload Too Large")
        body = environ["wsgi.input"].read(length) if length else b""
        if not signature_ok(body, environ.get("HTTP_X_PAGERDUTY_SIGNATURE"), secrets):
            return _answer(start_response, "401 Unauthorized")
        try:
            event = json.loads(body)["event"]
            event_id, event_type = str(event["id"]), str(event["event_type"])
        except (ValueError, KeyError, TypeError):
            return _answer(start_response, "400 Bad Request")
        if not event_type.startswith("incident."):
            return _answer(start_response, "202 Accepted")  # pings and the like: nothing to do
        key = f"pagerduty:event:{event_id}"
        try:
            if not client.set(key, "1", nx=True, ex=DEDUPE_TTL):
                return _answer(start_response, "200 OK")  # a duplicate
            try:
                send(body, environ.get("HTTP_X_WEBHOOK_ID"), event)
            except Exception:
                client.delete(key)  # not enqueued: let PagerDuty's retry in
                raise
        except redis.RedisError:
            return _answer(start_response, "503 Service Unavailable")
        return _answer(start_response, "202 Accepted")

    return app
