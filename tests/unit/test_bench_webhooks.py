"""The webhooks benchmark's pieces: its deliveries, and the conventional receiver it compares the app with
(bench/baselines/webhook_receiver.py) — signature, SET NX dedupe, the same Huey job the worker drains."""

from __future__ import annotations

import io
import json
from collections import Counter

from bench._webhooks_load import build_deliveries, signed_payload
from bench.baselines.webhook_receiver import create_app, signature_ok
from bench.webhooks import _db_url
from sandbox import credentials
from sandbox.pagerduty_webhooks import sign


def test_signature_is_any_v1_entry_under_any_secret():
    body = b'{"event": {}}'
    header = sign(body, ["old-secret", "new-secret"])
    assert signature_ok(body, header, [b"new-secret"])
    assert signature_ok(body, "v0=abc, " + header, [b"other", b"old-secret"])
    assert not signature_ok(body + b" ", header, [b"new-secret"])
    assert not signature_ok(body, None, [b"new-secret"])
    assert not signature_ok(body, header, [])


def test_deliveries_hold_the_duplicates_and_the_expected_effects():
    deliveries, unique, expected = build_deliveries(200, 0.3, 0.33, 0.3)
    assert len(deliveries) == 200 and unique == 140
    assert expected["cards"] + expected["replies"] == unique
    copies = Counter(deliveries)
    assert len(copies) == unique and sum(c - 1 for c in copies.values()) == 60


def test_peer_databases_sit_beside_the_apps():
    assert _db_url("redis://127.0.0.1:6390/0", 1) == "redis://127.0.0.1:6390/1"
    assert _db_url("redis://:pw@h:1", 2) == "redis://:pw@h:1/2"


def _post(app, raw: bytes) -> int:
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/pagerduty/webhook",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
    }
    answered = []
    app(environ, lambda status, _headers: answered.append(int(status.split()[0])))
    return answered[0]


def test_receiver_admits_an_event_once_onto_the_workers_job(redis_url, tmp_path, monkeypatch):
    import redis

    from bot.queue import TaskQueue
    from bot.registry import Registry

    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("PAGERDUTY_WEBHOOK_SECRETS", f"other,{credentials.PAGERDUTY_WEBHOOK_SECRET}")
    monkeypatch.setenv("CHATOPS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PEER_QUEUE", "huey")
    app = create_app()
    delivery = signed_payload("incident.triggered", 1)
    event_id = json.loads(delivery.partition(b"\r\n\r\n")[2])["event"]["id"]
    client = redis.Redis.from_url(redis_url)
    try:
        assert _post(app, delivery) == 202
        assert _post(app, delivery) == 200  # the duplicate
        assert _post(app, delivery.replace(b"v1=", b"v1=0")) == 401
        assert _post(app, signed_payload("pagey.ping", 0)) == 202  # ignored
        queue = TaskQueue(redis_url, tmp_path, Registry.discover())
        assert queue.pending_requests() == ["pagerduty.webhook_effect"]
        (job,) = list(queue.huey.pending())
        assert job.kwargs["delivery"] == delivery.partition(b"\r\n\r\n")[2]
    finally:
        client.delete(f"pagerduty:event:{event_id}")
        client.close()
