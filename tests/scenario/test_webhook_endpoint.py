"""`POST /pagerduty/webhook` through real HTTP into the running app on a real Redis: signatures (rotation,
tampering), limits, V2 batches, duplicates (sequential, concurrent, across two web processes), and a
store outage answered 503 until the store is back."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from sandbox import credentials
from sandbox.pagerduty_webhooks import sign
from tests.support import http, wait_for

OLD = credentials.PAGERDUTY_WEBHOOK_SECRET
NEW = "rotated-webhook-secret"


def incident(number: int, status: str = "triggered", title: str | None = None) -> dict:
    inc_id = f"QT{number:06d}"
    return {
        "id": inc_id,
        "type": "incident",
        "html_url": f"https://sandbox.pagerduty.test/incidents/{inc_id}",
        "number": number,
        "status": status,
        "incident_key": f"test-{number}",
        "title": title or f"Test incident {number}",
        "service": {"id": "PSVC001", "type": "service_reference", "summary": "Alibaba Cloud Ops"},
        "assignees": [{"id": "PALICE", "type": "user_reference", "summary": "Alice Admin"}],
        "urgency": "high",
    }


def v3(event_type: str, number: int, status: str = "triggered", event_id: str | None = None, **kw) -> bytes:
    event = {
        "id": event_id or uuid.uuid4().hex,
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": kw.get("occurred_at", "2026-01-01T00:00:00.000Z"),
        "agent": {"id": "PBOB", "type": "user_reference", "summary": "Bob Operator"},
        "client": None,
        "data": incident(number, status),
    }
    return json.dumps({"event": event}).encode()


def v2_message(event: str, number: int, status: str, message_id: str | None = None) -> dict:
    inc = incident(number, status)
    inc["incident_number"] = inc.pop("number")
    inc["assignments"] = [{"assignee": inc.pop("assignees")[0]}]
    return {
        "id": message_id or str(uuid.uuid4()),
        "event": event,
        "created_on": "2026-01-01T00:00:00Z",
        "incident": inc,
        "log_entries": [{"type": "x_log_entry", "agent": {"summary": "Carol Viewer"}}],
    }


def deliver(base_url: str, body: bytes, secrets=(OLD,), webhook_id: str | None = None, signature=None):
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PagerDuty-Webhook/V3.0",
        "X-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-PagerDuty-Signature": signature if signature is not None else sign(body, list(secrets)),
    }
    return http("POST", base_url + "/pagerduty/webhook", body, headers)


def posts(slack, channel="C_OPS", threaded: bool | None = None) -> list:
    return [m for m in slack.channel_messages(channel) if threaded is None or bool(m.thread_ts) == threaded]


def drained(bot) -> bool:
    return bot.services.queue.pending() == 0


@pytest.fixture
def bot(make_bot, redis_url):
    return make_bot(
        redis_url=redis_url, emulators=["slack"], env={"PAGERDUTY_WEBHOOK_SECRETS": f"{NEW},{OLD}"}
    )


def test_signature_rules_rotation_and_tampering(bot):
    body = v3("incident.triggered", 1)
    assert deliver(bot.web_url, body, secrets=(NEW, OLD)).status == 202  # both entries, as during a rotation
    assert deliver(bot.web_url, v3("incident.triggered", 2), secrets=(OLD,)).status == 202  # old secret alone
    assert deliver(bot.web_url, v3("incident.triggered", 3), secrets=(NEW,)).status == 202  # new alone
    tampered = body.replace(b"Test incident 1", b"Test incident X")
    assert deliver(bot.web_url, tampered, signature=sign(body, [OLD])).status == 401
    assert deliver(bot.web_url, body, secrets=("some-other-secret",)).status == 401
    assert deliver(bot.web_url, body, signature="").status == 401
    v0_only = sign(body, [OLD]).replace("v1=", "v0=")
    assert deliver(bot.web_url, body, signature=v0_only).status == 401
    assert deliver(bot.web_url, body, signature="v1=\u00e9t\u00e9").status == 401  # not hex, not even ASCII
    mixed = "v0=deadbeef," + sign(body, ["wrong"]) + "," + sign(body, [OLD]).upper().replace("V1=", "v1=")
    assert deliver(bot.web_url, body, signature=mixed).status == 202
    slack = bot.emulator("slack")
    wait_for(lambda: len(posts(slack)) == 3 and drained(bot), message="three cards")
    assert sorted(m.text.split(" — ")[0] for m in posts(slack)) == [
        ":rotating_light: #1 Test incident 1",
        ":rotating_light: #2 Test incident 2",
        ":rotating_light: #3 Test incident 3",
    ]


def test_limits_bad_json_and_unknown_event_types(bot):
    big = b'{"event": {"x": "' + b"a" * (256 * 1024) + b'"}}'
    assert deliver(bot.web_url, big).status == 413
    assert deliver(bot.web_url, b"{not json").status == 400
    assert deliver(bot.web_url, b"[1, 2]").status == 400
    for event_type in ("service.updated", "incident.workflow.started", "pagey.ping"):
        resp = deliver(bot.web_url, v3(event_type, 7))
        assert resp.status == 202 and resp.json() == {"accepted": 0, "duplicates": 0, "ignored": 1}
    assert bot.services.queue.pending_requests() == [] and posts(bot.emulator("slack")) == []


def test_sequential_duplicates_and_same_event_under_another_webhook_id_give_one_effect(bot):
    body = v3("incident.triggered", 11, event_id="EV-11")
    first = deliver(bot.web_url, body, webhook_id="WH-11")
    again = [deliver(bot.web_url, body, webhook_id="WH-11") for _ in range(3)]
    other_subscription = deliver(bot.web_url, body, webhook_id="WH-11-second-subscription")
    assert first.status == 202 and first.json()["accepted"] == 1
    assert all(r.status == 202 and r.json()["duplicates"] == 1 for r in [*again, other_subscription])
    slack = bot.emulator("slack")
    wait_for(lambda: posts(slack) and drained(bot), message="the card")
    assert len(posts(slack)) == 1


def test_an_update_that_arrives_before_its_trigger_waits_for_the_card(bot):
    slack = bot.emulator("slack")
    assert deliver(bot.web_url, v3("incident.acknowledged", 12, status="acknowledged")).status == 202
    # The update ran, found no card, and was put back to wait (not merely still queued, which a busy
    # machine would also show as pending).
    wait_for(
        lambda: 'outcome="retry"' in bot.services.metrics.render().decode(),
        message="the update put back to wait",
    )
    assert bot.services.queue.pending() >= 1
    assert posts(slack) == []  # no card of its own yet: it waits for the trigger's
    assert deliver(bot.web_url, v3("incident.triggered", 12)).status == 202
    card = wait_for(lambda: "Acknowledged" in str(posts(slack)[0].blocks) if posts(slack) else None, 30)
    assert card and len(posts(slack, threaded=False)) == 1


def test_v2_batches_are_handled_per_message_id(bot):
    trigger_a, trigger_b = (
        v2_message("incident.trigger", 21, "triggered"),
        v2_message("incident.trigger", 22, "triggered"),
    )
    ack_a = v2_message("incident.acknowledge", 21, "acknowledged")
    batch = json.dumps({"messages": [trigger_a, trigger_b, ack_a]}).encode()
    resp = deliver(bot.web_url, batch)
    assert resp.status == 202 and resp.json()["accepted"] == 3
    slack = bot.emulator("slack")
    wait_for(lambda: len(posts(slack)) == 3 and drained(bot), message="two cards and a thread reply")
    assert deliver(bot.web_url, batch).json() == {"accepted": 0, "duplicates": 3, "ignored": 0}
    resolve_b = v2_message("incident.resolve", 22, "resolved")
    overlap = json.dumps({"messages": [ack_a, resolve_b, {"id": "x", "event": "incident.custom"}]}).encode()
    assert deliver(bot.web_url, overlap).json() == {"accepted": 1, "duplicates": 1, "ignored": 1}
    wait_for(lambda: len(posts(slack, threaded=True)) == 2 and drained(bot), message="the resolve reply")
    cards = {m.text.split(" — ")[0]: m for m in posts(slack, threaded=False)}
    assert set(cards) == {":eyes: #21 Test incident 21", ":white_check_mark: #22 Test incident 22"}
    replies = sorted(m.text for m in posts(slack, threaded=True))
    assert replies == ["*Carol Viewer* acknowledged the incident.", "*Carol Viewer* resolved the incident."]


def test_concurrent_duplicates_across_two_web_processes_on_one_redis(bot):
    from bot.services import Services
    from bot.web import create_app, serve
    from bot.worker import Worker

    second = Services(bot.settings)  # a second replica: its own app, store client, queue and worker
    server = serve(create_app(second), "127.0.0.1", 0)
    worker = Worker(second, workers=2)
    worker.start()
    urls = [bot.web_url, f"http://127.0.0.1:{server.server_port}"]
    try:
        bodies = [(v3("incident.triggered", 100 + n), f"WH-C-{n}") for n in range(12)]
        start = threading.Barrier(12)

        def storm(k: int) -> list[int]:
            start.wait()
            out = []
            for body, webhook_id in bodies:  # every thread sends every delivery, alternating replicas
                out.append(deliver(urls[(k + len(out)) % 2], body, webhook_id=webhook_id).status)
            return out

        with ThreadPoolExecutor(12) as pool:
            statuses = [s for result in pool.map(storm, range(12)) for s in result]
        assert set(statuses) == {202}
        slack = bot.emulator("slack")
        wait_for(lambda: len(posts(slack)) >= 12 and drained(bot), message="twelve cards")
        titles = [m.text.split(" — ")[0] for m in posts(slack)]
        assert len(titles) == 12 and len(set(titles)) == 12
    finally:
        worker.stop(timeout=5)
        server.shutdown()
        server.server_close()
        second.close()


def test_store_outage_answers_503_then_recovers(make_bot):
    from sandbox.stack import RedisServer

    redis = RedisServer().start()
    bot = make_bot(redis_url=redis.url, emulators=["slack"], env={"PAGERDUTY_WEBHOOK_SECRETS": OLD})
    body = v3("incident.triggered", 31)
    try:
        redis.stop()
        assert deliver(bot.web_url, body, webhook_id="WH-31").status == 503
        assert http("GET", bot.web_url + "/healthz").status == 503
        revived = RedisServer()
        revived.port = redis.port
        redis = revived.start()
        wait_for(lambda: http("GET", bot.web_url + "/healthz").status == 200, message="store back")
        assert deliver(bot.web_url, body, webhook_id="WH-31").status == 202  # PagerDuty's retry
        slack = bot.emulator("slack")
        wait_for(lambda: posts(slack), message="the card after recovery")
        assert deliver(bot.web_url, body, webhook_id="WH-31").json()["duplicates"] == 1
        wait_for(lambda: drained(bot), message="queue drained")
        assert len(posts(slack)) == 1
    finally:
        bot.stop()
        redis.stop()


def test_embedded_store_dedupes_too(make_bot):
    bot = make_bot(emulators=["slack"], env={"PAGERDUTY_WEBHOOK_SECRETS": OLD})  # no REDIS_URL: SQLite
    body = v3("incident.triggered", 41)
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: deliver(bot.web_url, body, webhook_id="WH-41").status, range(8)))
    # a copy still in flight elsewhere is answered 503 (PagerDuty retries it); never two acceptances
    assert set(statuses) <= {202, 503} and 202 in statuses
    for _ in range(3):
        assert deliver(bot.web_url, body, webhook_id="WH-41").json()["duplicates"] == 1
    slack = bot.emulator("slack")
    wait_for(lambda: posts(slack) and drained(bot), message="the card")
    assert len(posts(slack)) == 1


@pytest.mark.parametrize(
    "doc",
    [
        {"messages": [{"id": "m1", "event": "incident.trigger", "data": "x"}]},
        {"messages": [{"id": "m2", "event": "incident.trigger", "incident": ["not", "an", "object"]}]},
        {"messages": [{"id": "m3", "event": "incident.trigger", "data": {"incident": 7}}]},
        {"messages": [{"id": "m4", "event": "incident.trigger", "incident": {}, "log_entries": 5}]},
        {"event": {"id": "E1", "event_type": "incident.triggered", "data": "x"}},
        {"event": {"id": "E2", "event_type": "incident.acknowledged", "data": {}, "agent": "bob"}},
    ],
)
def test_a_delivery_the_worker_could_never_process_is_refused_at_once(bot, doc):
    resp = deliver(bot.web_url, json.dumps(doc).encode())
    assert resp.status == 400 and "must be" in resp.json()["error"]


def test_an_unhandled_event_of_any_shape_is_still_only_ignored(bot):
    doc = {"messages": [{"id": "m9", "event": "incident.custom", "data": "x"}]}
    resp = deliver(bot.web_url, json.dumps(doc).encode())
    assert resp.status == 202 and resp.json()["ignored"] == 1
