"""The PagerDuty adapter's incident actions (the real `pagerduty` client) against the emulator over TLS:
snooze (400 unless acknowledged), escalation levels, reassignment to a user or a policy, priorities,
urgency, notes and their length limit, the log — and the webhook each change queues (or does not)."""

from __future__ import annotations

import datetime as dt

import pagerduty
import pytest

from bot.adapters.pagerduty import PagerDuty, PagerDutyError
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
        rate_limit_retries=1,
    )
    client.client.sleep_timer = 0.01
    yield client
    client.close()


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
