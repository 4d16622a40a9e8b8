"""The pure views of an incident: the card's controls, `/incident show`, the modals, and the thread
lines of changes."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from handlers.pagerduty import controls, forms, messages
from handlers.pagerduty.details import IncidentDetails, detail_reply

INCIDENT = {"id": "Q1", "number": 3, "status": "triggered", "urgency": "high", "title": "Disk <full>"}


def _elements(block):
    return {el["action_id"]: el for el in block["elements"]}


def test_the_controls_follow_the_status_and_carry_the_incident():
    triggered = _elements(controls.incident_controls(INCIDENT))
    assert list(triggered) == [
        controls.ACK_ACTION,
        controls.RESOLVE_ACTION,
        controls.NOTE_ACTION,
        controls.MORE_ACTION,
    ]
    more = [o["value"] for o in triggered[controls.MORE_ACTION]["options"]]
    assert more == ["reassign:Q1", "escalate:Q1", "priority:Q1", "urgency-low:Q1", "show:Q1"]
    acknowledged = _elements(
        controls.incident_controls({**INCIDENT, "status": "acknowledged", "urgency": "low"})
    )
    assert controls.ACK_ACTION not in acknowledged
    assert [o["value"] for o in acknowledged[controls.SNOOZE_ACTION]["options"]] == [
        "1h:Q1",
        "4h:Q1",
        "24h:Q1",
    ]
    low_more = [o["value"] for o in acknowledged[controls.MORE_ACTION]["options"]]
    assert low_more == ["reassign:Q1", "priority:Q1", "urgency-high:Q1", "show:Q1"]  # no escalating low
    assert controls.incident_controls({**INCIDENT, "status": "resolved"}) is None
    assert controls.parse_more("escalate:Q1") == ("escalate", "Q1")
    assert controls.parse_snooze("4h:Q1") == (14400, "Q1")
    for bad in ("escalate", "drop:Q1", "escalate:", ""):
        assert controls.parse_more(bad) is None
    for bad in ("2d:Q1", "4h", ""):
        assert controls.parse_snooze(bad) is None


def test_show_writes_times_in_the_viewers_zone_escapes_what_came_from_outside_and_names_what_is_missing():
    raw = {
        **INCIDENT,
        "incident_number": 3,
        "status": "acknowledged",
        "created_at": "2026-03-25T09:00:00Z",
        "service": {"id": "PSVC", "summary": "Web"},
        "escalation_policy": {"id": "PEP", "summary": "Ops"},
        "assignments": [{"assignee": {"id": "PBOB", "summary": "Bob"}}],
        "acknowledgements": [{"at": "2026-03-25T09:05:00Z", "acknowledger": {"summary": "Bob"}}],
        "pending_actions": [{"type": "unacknowledge", "at": "2026-03-25T13:05:00Z"}],
    }
    log = [{"created_at": "2026-03-25T09:05:00Z", "summary": "Acknowledged by <@U1>"}]
    details = IncidentDetails(
        raw, log=log, notes=[], level=2, levels=3, missing=["the escalation level (slow)"]
    )
    text, body = detail_reply(details, ZoneInfo("Asia/Tokyo"))
    shown = json.dumps(body)
    assert "Wed 25 Mar 18:00 JST" in shown and "Wed 25 Mar 18:05 JST by Bob" in shown
    assert "Triggers again at Wed 25 Mar 22:05 JST" in shown
    assert "Disk &lt;full&gt;" in shown and "Acknowledged by &lt;@U1&gt;" in shown and "<@U1>" not in shown
    assert "Ops (level 2 of 3)" in shown and "No notes yet." in shown
    assert "Not shown: the escalation level (slow)" in shown
    assert text.startswith(":eyes: #3 Disk <full>")
    unread = json.dumps(detail_reply(IncidentDetails(raw), ZoneInfo("UTC"))[1])
    assert "No notes yet." not in unread and "level unknown" in unread and "*Timeline*" not in unread


def test_modals_carry_the_incident_and_channel_and_options_their_names():
    view = forms.note_modal("Q1", "#3", "C_OPS")
    assert json.loads(view["private_metadata"]) == {"incident": "Q1", "channel": "C_OPS"}
    assert view["blocks"][1]["element"]["max_length"] == forms.SLACK_TEXT_MAX
    policies = [{"id": "PEP2", "name": "Database: primary"}]
    reassign = forms.reassign_modal("Q1", "#3", "C_OPS", policies)
    [option] = reassign["blocks"][2]["element"]["options"]
    assert forms.parse_option_value(option["value"]) == ("PEP2", "Database: primary")
    assert forms.parse_option_value(None) is None and forms.parse_option_value("PEP2") is None
    assert len(forms.reassign_modal("Q1", "#3", None, [])["blocks"]) == 2  # no policies: only the person


def test_thread_lines_of_changes():
    inc = {**INCIDENT, "assignees": ["Carol"], "escalation_policy": "Database", "priority": None}
    assert messages.activity_text("incident.delegated", "Alice", inc) == (
        "*Alice* reassigned the incident to the escalation policy Database."
    )
    assert (
        messages.activity_text("incident.escalated", "Alice", inc)
        == "*Alice* escalated the incident to Carol."
    )
    assert (
        messages.activity_text("incident.priority_updated", "Alice", inc) == "*Alice* removed the priority."
    )
    ended = messages.activity_text("incident.unacknowledged", None, inc, snooze_ended=True)
    assert ended == "PagerDuty: the snooze ended, so the incident is triggered again."
    snoozed = messages.activity_text("", "Bob", inc, what="snoozed the incident for 1 hour")
    assert snoozed == "*Bob* snoozed the incident for 1 hour."
