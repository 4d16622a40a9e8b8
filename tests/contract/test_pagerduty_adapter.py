"""The PagerDuty adapter (the real `pagerduty` client) against the emulator over TLS, and the emulator's
REST semantics: incident_key, From, pagination, bulk update, 429 handling, errors."""

from __future__ import annotations

import pagerduty
import pytest

from bot.adapters.pagerduty import PagerDuty, PagerDutyError
from bot.errors import ConfigError, Conflict
from sandbox import credentials
from sandbox.pagerduty_emulator import PagerDutyEmulator


@pytest.fixture(scope="module")
def emulator():
    emu = PagerDutyEmulator().start()  # no bot URL: webhooks just queue
    yield emu
    emu.before_stop()
    emu.stop()


@pytest.fixture
def pd(emulator):
    client = PagerDuty(
        credentials.PAGERDUTY_API_KEY,
        emulator.base_url,
        from_email=credentials.PAGERDUTY_FROM_EMAIL,
        ca_bundle=str(emulator.ca_file),
        timeout=5,
        rate_limit_retries=2,
    )
    client.client.sleep_timer = 0.01
    yield client
    client.close()


def test_refuses_plain_http_and_trusts_only_the_given_ca(emulator):
    with pytest.raises(ConfigError, match="https"):
        PagerDuty("k", "http://127.0.0.1:1")
    untrusting = PagerDuty(credentials.PAGERDUTY_API_KEY, emulator.base_url, timeout=5)
    untrusting.client.sleep_timer = 0.01
    with pytest.raises(PagerDutyError, match="unreachable"):
        untrusting.get_incident("QNOPE")


def test_incident_key_rejects_a_second_open_incident_until_resolved(pd, emulator):
    first = pd.create_incident("Disk full on db-1", "PSVC001", details="df says 100%", incident_key="k-disk")
    assert first["status"] == "triggered" and first["incident_number"] >= 1
    assert first["assignments"][0]["assignee"]["summary"] == "Alice Admin"  # level 1 of the policy
    with pytest.raises(PagerDutyError) as err:
        pd.create_incident("Disk full on db-1", "PSVC001", incident_key="k-disk")
    assert err.value.duplicate_incident_key and err.value.status == 400 and err.value.request_id
    assert not err.value.retriable
    assert isinstance(err.value, Conflict) and not err.value.retryable
    assert pd.find_incident_by_key("k-disk")["id"] == first["id"]
    resolved = pd.update_incident(first["id"], "resolved", from_email="bob@example.com")
    assert resolved["status"] == "resolved"
    again = pd.create_incident("Disk full on db-1", "PSVC001", incident_key="k-disk")
    assert again["id"] != first["id"]
    call = emulator.calls_named("POST /incidents")[-1]
    assert call.request.headers["from"] == credentials.PAGERDUTY_FROM_EMAIL
    assert call.request.headers["authorization"] == f"Token token={credentials.PAGERDUTY_API_KEY}"
    assert call.request.headers["accept"] == "application/vnd.pagerduty+json;version=2"


def test_writes_need_a_known_from_user_and_notes_are_kept(pd, emulator):
    inc = pd.create_incident("Cert expiry", "PSVC001")
    with pytest.raises(PagerDutyError, match="Requester User Not Found"):
        pd.update_incident(inc["id"], "acknowledged", from_email="nobody@example.com")
    note = pd.add_note(inc["id"], "renewing now", from_email="carol@example.com")
    assert note["content"] == "renewing now" and note["user"]["summary"] == "Carol Viewer"
    assert emulator.notes[inc["id"]][0]["content"] == "renewing now"


def test_lists_page_with_explicit_page_size_and_filters(pd, emulator):
    for n in range(105):
        pd.create_incident(f"bulk {n}", "PSVC002")
    found = pd.list_incidents(["triggered"], limit=500, service_ids=["PSVC002"])
    assert len(found) == 105 and found[0]["title"] == "bulk 104"  # newest first
    pages = [
        c for c in emulator.calls_named("GET /incidents") if c.request.query.get("service_ids[]") == "PSVC002"
    ]
    assert [c.request.query["limit"] for c in pages] == ["100", "100"]
    assert pd.find_user_by_email("BOB@example.com")["id"] == "PBOB"
    assert pd.find_user_by_email("mallory@example.com") is None
    oncalls = pd.oncalls(escalation_policy_ids=["PEP002"])
    assert {(o["escalation_level"], o["user"]["summary"]) for o in oncalls} == {
        (1, "Carol Viewer"),
        (2, "Bob Operator"),
    }
    assert [p["id"] for p in pd.find_escalation_policies("ops")] == ["PEP001"]
    assert [s["id"] for s in pd.find_schedules("db primary")] == ["PSCH002"]


def test_bulk_update_caps_at_250_incidents(pd, emulator):
    ids = [pd.create_incident(f"bulk-ack {n}", "PSVC001")["id"] for n in range(2)]
    body = {"incidents": [{"id": i, "type": "incident_reference", "status": "acknowledged"} for i in ids]}
    updated = pd.client.rput("/incidents", json=body["incidents"], headers={"From": "bob@example.com"})
    assert [i["status"] for i in updated] == ["acknowledged", "acknowledged"]
    too_many = [{"id": ids[0], "type": "incident_reference", "status": "resolved"}] * 251
    with pytest.raises(pagerduty.HttpError) as err:
        pd.client.rput("/incidents", json=too_many, headers={"From": "bob@example.com"})
    assert err.value.response.status_code == 413


def test_429_is_retried_a_bounded_number_of_times(pd, emulator):
    inc = pd.create_incident("rate limited", "PSVC001")
    emulator.fail_next(429, 2)
    assert pd.get_incident(inc["id"])["id"] == inc["id"]  # two retries were enough
    emulator.fail_next(429, 3)  # the first answer and both retries
    with pytest.raises(PagerDutyError) as err:
        pd.get_incident(inc["id"])
    assert err.value.status == 429 and err.value.retriable and "rate limited" in err.value.message
    emulator.fail_next(500, 1)
    with pytest.raises(PagerDutyError) as err:
        pd.get_incident(inc["id"])
    assert err.value.status == 500 and err.value.retriable  # 5xx: not retried by the client, retriable later
    assert err.value.retryable and not isinstance(err.value, Conflict)
    assert pd.get_incident(inc["id"])["id"] == inc["id"]


def test_bad_key_is_refused(emulator):
    bad = PagerDuty("wrong", emulator.base_url, ca_bundle=str(emulator.ca_file), timeout=5)
    with pytest.raises(PagerDutyError) as err:
        bad.get_incident("Q1")
    assert err.value.status == 401
    assert not err.value.retryable


def test_every_change_queues_a_v3_webhook_and_its_v2_twin(pd, emulator):
    before = emulator.webhooks.pending()
    inc = pd.create_incident("webhook shapes", "PSVC001")
    pd.update_incident(inc["id"], "acknowledged", from_email="alice@example.com")
    pd.add_note(inc["id"], "looking")
    items = list(emulator.webhooks._queue)[-3:]
    assert emulator.webhooks.pending() == before + 3
    assert [i.v3["event_type"] for i in items] == [
        "incident.triggered",
        "incident.acknowledged",
        "incident.annotated",
    ]
    assert items[1].v3["agent"]["summary"] == "Alice Admin"
    assert (
        items[1].v3["data"]["status"] == "acknowledged"
        and items[1].v3["data"]["number"] == inc["incident_number"]
    )
    assert items[2].v3["data"]["type"] == "incident_note" and items[2].v3["data"]["content"] == "looking"
    assert [i.v2["event"] for i in items] == ["incident.trigger", "incident.acknowledge", "incident.annotate"]
