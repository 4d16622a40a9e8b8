"""The PagerDuty adapter (the real `pagerduty` client) against the emulator over TLS, and the emulator's
REST semantics: incident_key, From, pagination, bulk update, 429 handling, errors; the incident actions:
snooze (400 unless acknowledged), escalation levels, reassignment to a user or a policy, priorities,
urgency, notes and their length limit, the log — and the webhook each change queues (or does not)."""

from __future__ import annotations

import datetime as dt

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


def queued(emulator, since: int) -> list[dict]:
    """The V3 events queued after the first `since` (the sender has no bot to deliver to)."""
    return [item.v3 for item in list(emulator.webhooks._queue)[since:]]


def test_only_an_acknowledged_incident_can_be_snoozed_and_the_snooze_ends_by_triggering(pd, emulator):
    inc = pd.create_incident("Snooze me", "PSVC001")
    before = len(emulator.webhooks._queue)
    with pytest.raises(PagerDutyError) as err:
        pd.snooze_incident(inc["id"], 3600, from_email="bob@example.com")
    assert err.value.status == 400 and "acknowledged" in err.value.message and not err.value.retryable
    assert emulator.incidents[inc["id"]]["pending_actions"] == [] and queued(emulator, before) == []

    pd.update_incident(inc["id"], "acknowledged", from_email="bob@example.com")
    snoozed = pd.snooze_incident(inc["id"], 4 * 3600, from_email="bob@example.com")
    [pending] = snoozed["pending_actions"]
    until = dt.datetime.fromisoformat(pending["at"].replace("Z", "+00:00"))
    assert snoozed["status"] == "acknowledged" and pending["type"] == "unacknowledge"
    assert dt.timedelta(hours=3, minutes=59) < until - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=4)
    assert [e["event_type"] for e in queued(emulator, before)] == [
        "incident.acknowledged"
    ]  # none for snoozes
    call = emulator.calls_named("POST /incidents/{id}/snooze")[-1]
    assert call.request.json() == {"duration": 14400} and call.request.headers["from"] == "bob@example.com"

    assert emulator.end_snooze(inc["id"])
    [ended] = queued(emulator, before)[1:]
    assert ended["event_type"] == "incident.unacknowledged" and ended["agent"] is None
    assert pd.get_incident(inc["id"])["status"] == "triggered"
    types = [e["type"] for e in pd.incident_log(inc["id"])]
    assert types[:3] == ["unacknowledge_log_entry", "snooze_log_entry", "acknowledge_log_entry"]


def test_escalation_levels_reassignment_and_delegation(pd, emulator):
    inc = pd.create_incident("Escalate me", "PSVC001")
    policy = pd.get_escalation_policy("PEP001")
    assert [r["targets"][0]["summary"] for r in policy["escalation_rules"]] == [
        "Alice Admin",
        "Bob Operator",
        "Erin SRE",
    ]
    before = len(emulator.webhooks._queue)
    escalated = pd.change_incident(inc["id"], {"escalation_level": 2}, from_email="alice@example.com")
    assert [a["assignee"]["summary"] for a in escalated["assignments"]] == ["Bob Operator"]
    with pytest.raises(PagerDutyError, match="between 1 and 3"):
        pd.change_incident(inc["id"], {"escalation_level": 4}, from_email="alice@example.com")
    to_carol = {"assignments": [{"assignee": {"id": "PCAROL", "type": "user_reference"}}]}
    assert pd.change_incident(inc["id"], to_carol, "alice@example.com")["assignments"][0]["assignee"][
        "id"
    ] == ("PCAROL")
    with pytest.raises(PagerDutyError, match="Assignee not found"):
        bad = {"assignments": [{"assignee": {"id": "PNOBODY", "type": "user_reference"}}]}
        pd.change_incident(inc["id"], bad, from_email="alice@example.com")
    database = {"escalation_policy": {"id": "PEP002", "type": "escalation_policy_reference"}}
    delegated = pd.change_incident(inc["id"], database, from_email="alice@example.com")
    assert delegated["escalation_policy"]["summary"] == "Database Escalation"
    assert [a["assignee"]["summary"] for a in delegated["assignments"]] == ["Carol Viewer"]
    events = queued(emulator, before)
    assert [e["event_type"] for e in events] == [
        "incident.escalated",
        "incident.reassigned",
        "incident.delegated",
    ]
    assert events[0]["data"]["assignees"][0]["summary"] == "Bob Operator"


def test_escalating_an_acknowledged_incident_triggers_it_again_and_ends_its_snooze(pd, emulator):
    """PagerDuty re-triggers an acknowledged incident that is escalated (the new level's responder is
    paged and must acknowledge): its acknowledgement and any snooze end, and the webhook says so."""
    inc = pd.create_incident("Escalate me while acknowledged", "PSVC001")
    pd.update_incident(inc["id"], "acknowledged", from_email="alice@example.com")
    pd.snooze_incident(inc["id"], 3600, from_email="alice@example.com")
    before = len(emulator.webhooks._queue)
    escalated = pd.change_incident(inc["id"], {"escalation_level": 2}, from_email="alice@example.com")
    assert escalated["status"] == "triggered"
    assert escalated["acknowledgements"] == [] and escalated["pending_actions"] == []
    [event] = queued(emulator, before)
    assert event["event_type"] == "incident.escalated" and event["data"]["status"] == "triggered"
    assert not emulator.end_snooze(inc["id"])  # no snooze left to run out


def test_priorities_and_urgency(pd, emulator):
    priorities = pd.priorities()
    assert [p["name"] for p in priorities] == ["P1", "P2", "P3", "P4", "P5"]
    inc = pd.create_incident("Prioritise me", "PSVC001")
    before = len(emulator.webhooks._queue)
    p1 = {"priority": {"id": priorities[0]["id"], "type": "priority_reference"}}
    assert pd.change_incident(inc["id"], p1, "erin@example.com")["priority"]["summary"] == "P1"
    with pytest.raises(PagerDutyError, match="Priority not found"):
        pd.change_incident(
            inc["id"], {"priority": {"id": "PNOPE", "type": "priority_reference"}}, "erin@example.com"
        )
    assert pd.change_incident(inc["id"], {"urgency": "low"}, "erin@example.com")["urgency"] == "low"
    with pytest.raises(PagerDutyError, match="low-urgency") as err:  # PagerDuty escalates high urgency only
        pd.change_incident(inc["id"], {"escalation_level": 2}, "erin@example.com")
    assert err.value.status == 400 and emulator.incidents[inc["id"]]["escalation_level"] == 1
    events = queued(emulator, before)
    assert [e["event_type"] for e in events] == ["incident.priority_updated"]  # urgency: no V3 event type
    assert events[0]["data"]["priority"]["summary"] == "P1"
    assert [e["type"] for e in pd.incident_log(inc["id"], limit=2)] == [
        "urgency_change_log_entry",
        "priority_change_log_entry",
    ]


def test_notes_keep_their_limit_and_the_log_is_newest_first_without_notifications(pd, emulator):
    inc = pd.create_incident("Note me", "PSVC001")
    with pytest.raises(pagerduty.HttpError) as err:  # the adapter cuts notes to the limit; the raw client
        pd.client.rpost(
            f"/incidents/{inc['id']}/notes",
            json={"content": "x" * 25_001},
            headers={"From": "bob@example.com"},
        )
    assert err.value.response.status_code == 400 and emulator.notes.get(inc["id"]) is None
    for n in range(12):
        pd.add_note(inc["id"], f"note {n}", from_email="bob@example.com")
    notes = pd.incident_notes(inc["id"])
    assert [n["content"] for n in notes][:2] == ["note 0", "note 1"] and len(notes) == 12
    log = pd.incident_log(inc["id"])
    assert len(log) == 10 and log[0]["summary"] == "note 11" and log[0]["agent"]["summary"] == "Bob Operator"
    assert all(e["type"] == "annotate_log_entry" for e in log)
    everything = pd.incident_log(inc["id"], limit=100)
    assert everything[-1]["type"] == "trigger_log_entry"
    assert "notify_log_entry" not in {e["type"] for e in everything}  # is_overview
    assert "notify_log_entry" in {e["type"] for e in emulator.incidents[inc["id"]]["log"]}
    call = emulator.calls_named("GET /incidents/{id}/log_entries")[-1]
    assert call.request.query["is_overview"] == "true" and call.request.query["limit"] == "100"
