"""bot/records.py: the one dump / load of persisted records, and the records that use it."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import records
from bot.ecs_model import InstanceInfo
from bot.intents import Intent
from bot.records import Record, RecordError


class Marker(Record):
    event: str
    status: str | None = None
    count: int = 0


@dataclass(frozen=True)
class Point:
    name: str
    tags: dict[str, str] = field(default_factory=dict)


def test_a_record_round_trips_through_text_and_through_dicts():
    m = Marker(event="SystemMaintenance.Reboot", status="Scheduled", count=2)
    assert records.load(Marker, records.dump(m)) == m
    assert records.load(Marker, records.to_dict(m)) == m
    assert json.loads(records.dump(m)) == {
        "event": "SystemMaintenance.Reboot",
        "status": "Scheduled",
        "count": 2,
    }


def test_dataclasses_go_through_the_same_helpers():
    p = Point("web", {"env": "prod"})
    assert records.dump(p) == '{"name":"web","tags":{"env":"prod"}}'
    assert records.load(Point, records.dump(p).encode()) == p
    assert records.to_dict(p) == {"name": "web", "tags": {"env": "prod"}}


def test_unknown_keys_are_ignored_and_missing_ones_take_their_defaults():
    assert records.load(Marker, '{"event": "x", "added_later": [1, 2]}') == Marker(event="x")


def test_a_record_that_does_not_fit_is_an_error_or_none():
    with pytest.raises(RecordError):
        records.load(Marker, '{"status": "Scheduled"}')  # event is required
    with pytest.raises(RecordError):
        records.load(Marker, "not json")
    assert isinstance(RecordError("x"), ValueError)  # callers that caught ValueError still do
    assert records.load_or_none(Marker, "not json") is None
    assert records.load_or_none(Marker, None) is None
    assert records.load_or_none(Marker, "") is None
    assert records.load_or_none(Marker, '{"event": "x"}') == Marker(event="x")


def test_records_are_immutable():
    m = Marker(event="x")
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        m.event = "y"  # type: ignore[misc]
    assert m.event == "x"


def test_intents_are_stored_as_records():
    raw = records.dump(Intent("stop", "command", "U1", 12.5))
    assert json.loads(raw) == {"action": "stop", "source": "command", "actor": "U1", "at": 12.5}
    assert records.load(Intent, raw) == Intent("stop", "command", "U1", 12.5)


def test_instance_facts_remembered_by_older_versions_still_load():
    # the shape the events code stored before InstanceInfo became the one instance model
    old = {
        "instance_id": "i-1",
        "name": "web-1",
        "tags": {"env": "prod"},
        "region": None,
        "spot_strategy": None,
        "status": None,
        "instance_type": None,
    }
    info = records.load(InstanceInfo, json.dumps(old))
    assert info == InstanceInfo("i-1", name="web-1", tags={"env": "prod"}, spot_strategy="")
    assert info.region == "" and info.status == ""
    bare = records.load(InstanceInfo, '{"instance_id": "i-2", "name": null, "tags": null}')
    assert bare.name == "" and bare.tags == {}
    assert InstanceInfo.from_dict(old) == info


text = st.text(max_size=20)


@settings(deadline=None)
@given(
    st.builds(
        InstanceInfo,
        instance_id=text,
        name=text,
        status=st.sampled_from(["Running", "Stopped", ""]),
        instance_type=text,
        private_ip=text,
        tags=st.dictionaries(text, text, max_size=5),
        region=text,
        zone=text,
        spot_strategy=st.sampled_from(["NoSpot", "SpotAsPriceGo", ""]),
        os_type=text,
    )
)
def test_instance_info_round_trips_through_records_and_dicts(info):
    assert records.load(InstanceInfo, records.dump(info)) == info
    assert InstanceInfo.from_dict(info.as_dict()) == info
    assert records.to_dict(info) == info.as_dict()


def test_records_the_events_code_stored_before_load_unchanged():
    from handlers.events.history import describe_entry
    from handlers.events.stored import DigestState, HistoryEntry, MaintenanceMarker, Quarantined

    # a trail entry as processing.py wrote it with json.dumps (short keys, only some present)
    old = '{"t":1774744200.0,"e":"Instance:StateChange","id":"e1","s":"Stopped","o":"Running","n":"web-1"}'
    entry = records.load(HistoryEntry, old)
    assert (entry.s, entry.o, entry.n, entry.st, entry.restart) == ("Stopped", "Running", "web-1", None, None)
    assert records.load(HistoryEntry, records.dump(entry)) == entry
    assert describe_entry(entry, dt.UTC) == describe_entry(json.loads(old), dt.UTC)
    assert records.load(DigestState, '{"id":"d1","started":1.5,"ts":null,"last":2.0}') == DigestState(
        id="d1", started=1.5, last=2.0
    )
    assert records.load(DigestState, '{"id":"d1","started":1.5}').last is None
    assert records.load(
        MaintenanceMarker, '{"event":"SystemMaintenance.Reboot","status":"Scheduled"}'
    ).status == ("Scheduled")
    q = Quarantined(message_id="m", dequeue_count=3, reason="bad", at=1.0, body="{")
    assert json.loads(records.dump(q))["reason"] == "bad" and records.load(Quarantined, records.dump(q)) == q


def test_records_the_pagerduty_code_stored_before_load_unchanged():
    from handlers.pagerduty.common import CardRecord, OnBehalf
    from handlers.pagerduty.events import WebhookEvent
    from handlers.pagerduty.planning import Opened, PlannedWindow

    planned = {
        "start": "2026-03-25T10:00:00+00:00",
        "end": "2026-03-25T10:30:00+00:00",
        "all_day": False,
        "calendar_name": "ops",
        "channel": "C_OPS",
        "uid": "u1",
    }
    old_card = {
        "channel": "C_OPS",
        "ts": "1.2",
        "incident": {"id": "Q1", "status": "triggered", "assignees": ["Alice"]},
        "planned": planned,
        "latest": None,
        "occurred_at": "2026-03-25T10:00:01Z",
    }
    card = records.load(CardRecord, json.dumps(old_card))
    assert card.planned == PlannedWindow(**planned) and card.incident["assignees"] == ["Alice"]
    assert json.loads(records.dump(card)) == old_card
    assert records.load(OnBehalf, '{"user":"U1","fallback":true,"email":"bot@example.com"}').fallback
    opened = Opened(
        "id", "Q1", "k", "s", "d", "l", "2026-03-25T10:00:00+00:00", "2026-03-25T11:00:00+00:00", "f"
    )
    assert Opened.from_json(opened.to_json()) == opened
    event = WebhookEvent(
        ("wh:1", "ev:1"), "1", "incident.triggered", "2026-03-25T10:00:00Z", None, {"id": "Q1"}
    )
    job = event.as_job()
    assert job["keys"] == ["wh:1", "ev:1"] and json.loads(json.dumps(job)) == job
    assert WebhookEvent.from_job(job) == event


def test_outbox_payloads_written_before_load_and_new_ones_round_trip():
    from handlers.events.digest import entry, outbox_payload, payload_entry, read_line, split_payload
    from handlers.events.render import Notice

    old_notice = {
        "event_id": "e1",
        "kind": "state",
        "text": "web-1 (i-1) → Stopped",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "ünïcode"}}],
        "line": ":red_circle: web-1 → *Stopped*",
        "plain": "web-1 → Stopped",
        "urgent": False,
        "instance_id": "i-1",
        "state": "Stopped",
    }
    old_entry = json.dumps(
        {"l": old_notice["line"], "p": old_notice["plain"], "w": "Stopped", "i": "i-1"},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    old_payload = old_entry + "\n" + json.dumps(old_notice, separators=(",", ":"), ensure_ascii=False)
    head, notice = split_payload(old_payload)
    assert head == old_entry and notice == Notice(**old_notice)
    assert outbox_payload(notice) == old_payload  # the same bytes as before
    assert entry(old_notice) == entry(notice) == old_entry
    assert payload_entry(json.dumps(old_notice)) == old_entry  # a bare notice
    assert split_payload(json.dumps(old_notice))[1] == notice
    assert read_line("not json").p == "not json" and read_line(old_entry).i == "i-1"
    rebuilt = Notice(kind="state", text="x", line="l", plain="p", state="Stopped", instance_id="i-2")
    assert split_payload(outbox_payload(rebuilt))[1] == rebuilt
