"""The webhook's hot-path view of a delivery must agree with the full parse the worker does later:
same items, same dedupe keys, same handled / ignored split, and BadDelivery for exactly the same bodies."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.pagerduty.events import BadDelivery, delivery_items, event_at, parse_delivery


def _agree(body: bytes, webhook_id: str | None) -> None:
    try:
        events = parse_delivery(body, webhook_id)
    except BadDelivery:
        with pytest.raises(BadDelivery):
            delivery_items(body, webhook_id)
        return
    items = delivery_items(body, webhook_id)
    assert [i.index for i in items] == list(range(len(events)))
    assert [i.keys for i in items] == [e.keys for e in events]
    assert [i.handled for i in items] == [e.handled for e in events]
    for item, event in zip(items, events, strict=True):
        assert event_at(body, webhook_id, item.index) == event


def _v3(event_type: str = "incident.triggered", event_id: str | None = "01ABC", **data) -> bytes:
    event = {"event_type": event_type, "occurred_at": "2026-11-22T09:00:00Z"}
    if event_id is not None:
        event["id"] = event_id
    event["data"] = {"id": "Q1", "type": "incident", "title": "Disk full", **data}
    return json.dumps({"event": event}).encode()


def test_v3_keys_are_the_webhook_id_and_the_event_id():
    (item,) = delivery_items(_v3(), "wh-1")
    assert item.keys == ("wh:wh-1", "ev:01ABC") and item.handled and item.index == 0
    _agree(_v3(), "wh-1")


def test_v3_without_webhook_id_or_event_id_still_gets_a_stable_key():
    body = _v3(event_id=None)
    (item,) = delivery_items(body, None)
    assert len(item.keys) == 1 and item.keys[0].startswith("ev:")
    assert delivery_items(body, None)[0].keys == item.keys
    _agree(body, None)


def test_unhandled_and_odd_event_types_are_ignored_not_errors():
    assert not delivery_items(_v3("pagey.ping"), "w")[0].handled
    odd = json.dumps({"event": {"id": "E1", "event_type": ["incident.triggered"]}}).encode()
    assert not delivery_items(odd, "w")[0].handled
    _agree(odd, "w")


def test_v2_batches_give_one_item_per_message():
    body = json.dumps(
        {
            "messages": [
                {"id": "m1", "event": "incident.trigger", "incident": {"id": "Q1"}},
                {"id": "m2", "event": "incident.custom"},
                {"event": "incident.resolve", "incident": {"id": "Q1"}},  # no id: keyed on its content
            ]
        }
    ).encode()
    items = delivery_items(body)
    assert [i.handled for i in items] == [True, False, True]
    assert items[0].keys == ("v2:m1",)
    _agree(body, None)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"other": 1}', b'{"messages": [1]}', b"\xff\xfe", b"", b'{"event": 5}'],
)
def test_bad_bodies_are_refused_by_both(body):
    with pytest.raises(BadDelivery):
        delivery_items(body)
    _agree(body, None)


_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8)
_events = st.fixed_dictionaries(
    {},
    optional={
        "id": st.none() | st.text(max_size=12) | st.integers(0, 9),
        "event_type": st.sampled_from(["incident.triggered", "incident.resolved", "pagey.ping", ""])
        | _scalars,
        "agent": st.none() | st.fixed_dictionaries({"summary": st.text(max_size=5)}),
        "data": st.none()
        | st.fixed_dictionaries(
            {"id": st.text(min_size=1, max_size=5)},
            optional={"type": st.sampled_from(["incident", "incident_note", "other"])},
        ),
    },
)
_messages = st.fixed_dictionaries(
    {},
    optional={
        "id": st.none() | st.text(max_size=12),
        "event": st.sampled_from(["incident.trigger", "incident.annotate", "incident.other"]) | _scalars,
        "incident": st.none() | st.fixed_dictionaries({"id": st.text(min_size=1, max_size=5)}),
    },
)
_documents = (
    st.builds(lambda e: {"event": e}, _events)
    | st.builds(lambda ms: {"messages": ms}, st.lists(_messages | _scalars, max_size=4))
    | st.dictionaries(st.text(max_size=6), _scalars, max_size=3)
    | _scalars
)


@settings(max_examples=300, deadline=None)
@given(doc=_documents, webhook_id=st.none() | st.text(max_size=20))
def test_hot_path_view_agrees_with_the_full_parse(doc, webhook_id):
    _agree(json.dumps(doc).encode(), webhook_id)
