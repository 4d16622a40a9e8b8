"""The ECS event envelope parser: both CloudMonitor shapes, Base64 or raw JSON, never an unexpected error."""

from __future__ import annotations

import base64
import datetime as dt
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.events.envelope import (
    EcsEvent,
    EnvelopeError,
    compact_time,
    decode_body,
    parse_event,
    parse_time,
)
from sandbox.mns_events import encode_body, interruption_event, state_change_event, system_event

INSTANCE = {"InstanceId": "i-bp1abc", "RegionId": "cn-hangzhou", "InstanceName": "web-1"}


def test_shape_a_state_change_in_base64():
    event = state_change_event(INSTANCE, "Stopped", shape="a", event_id="9435EAD6-1")
    parsed = parse_event(encode_body(event, "base64"))
    assert parsed.event_id == "9435EAD6-1"
    assert (parsed.name, parsed.instance_id, parsed.state, parsed.region) == (
        "Instance:StateChange",
        "i-bp1abc",
        "Stopped",
        "cn-hangzhou",
    )
    assert parsed.is_state_change and parsed.kind == "state" and parsed.time is not None


def test_shape_b_interruption_in_raw_json_gets_a_stable_hashed_id():
    body = encode_body(interruption_event(INSTANCE), "raw")
    first, second = parse_event(body), parse_event(body)
    assert first.event_id == second.event_id and first.event_id.startswith("h-")
    assert first.is_interruption and first.action == "delete" and first.instance_name == "web-1"
    assert first.instance_id == "i-bp1abc" and first.region == "cn-hangzhou"


def test_documented_example_with_compact_event_time():
    body = json.dumps(
        {
            "id": "9435EAD6-3CF6-4494-8F7A-3A\u00b7",
            "eventTime": "20181226T220114.058+0800",
            "level": "INFO",
            "name": "Instance:StateChange",
            "product": "ECS",
            "regionId": "cn-hangzhou",
            "resourceId": "acs:ecs:cn-hangzhou:1234:instance/i-xxx",
            "userId": "1234",
            "ver": "1.0",
            "content": {"resourceId": "i-xxx", "resourceType": "ALIYUN::ECS::Instance", "state": "Stopping"},
        }
    )
    event = parse_event(body)
    assert event.time == dt.datetime(2018, 12, 26, 14, 1, 14, 58000, tzinfo=dt.UTC)
    assert event.state == "Stopping" and event.instance_id == "i-xxx"


def test_system_event_carries_status_and_not_before():
    event = parse_event(encode_body(system_event(INSTANCE, "SystemMaintenance.Reboot", "Scheduled", 1.9e9)))
    assert event.is_system_event and event.kind == "system"
    assert event.event_status == "Scheduled" and event.not_before == dt.datetime.fromtimestamp(1.9e9, dt.UTC)


def test_instance_id_falls_back_to_the_arn_and_region_to_the_arn():
    event = parse_event(
        json.dumps(
            {
                "name": "Instance:StateChange",
                "resourceId": "acs:ecs:cn-beijing:1:instance/i-2ze",
                "content": {},
            }
        )
    )
    assert event.instance_id == "i-2ze" and event.region == "cn-beijing" and event.state is None


def test_time_formats():
    assert parse_time("2024-05-01T10:00:00Z") == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    assert parse_time(1714557600000) == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    assert parse_time("1714557600") == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    assert parse_time("soon") is None and parse_time(True) is None and parse_time(None) is None
    when = dt.datetime(2024, 5, 1, 10, 0, 1, 123000, tzinfo=dt.UTC)
    assert parse_time(compact_time(when)) == when
    beijing = dt.timezone(dt.timedelta(hours=8))
    assert parse_time("20181226T220114.058+0800") == dt.datetime(
        2018, 12, 26, 22, 1, 14, 58000, tzinfo=beijing
    )
    assert (
        parse_time("20181226T220114Z")
        == parse_time("20181226T220114")
        == dt.datetime(2018, 12, 26, 22, 1, 14, tzinfo=dt.UTC)
    )
    assert parse_time("20181326T220114Z") is None  # month 13


def test_bodies_that_are_not_events():
    for body in ("", "   ", "not json", "[1, 2]", '"just a string"', '{"no": "name"}', b"\xff\xfe", "e30="):
        try:
            parse_event(body)
        except EnvelopeError as exc:
            assert exc.reason
        else:
            raise AssertionError(f"{body!r} parsed")


def test_json_encoded_json_and_base64_without_padding():
    event = {"name": "Instance:StateChange", "content": {"instanceId": "i-1", "state": "Running"}}
    assert parse_event(json.dumps(json.dumps(event))).state == "Running"
    unpadded = base64.b64encode(json.dumps(event).encode()).decode().rstrip("=")
    assert decode_body(unpadded)["name"] == "Instance:StateChange"


# Properties --------------------------------------------------------------------------------------------

ids = st.from_regex(r"i-[a-z0-9]{6,20}", fullmatch=True)
regions = st.sampled_from(["cn-hangzhou", "cn-shanghai", "ap-southeast-1"])
states = st.sampled_from(["Pending", "Starting", "Running", "Stopping", "Stopped", "Deleted"])
names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(ids, regions, states, names, st.sampled_from(["a", "b"]), st.sampled_from(["base64", "raw"]))
def test_round_trip_of_both_shapes_and_encodings(iid, region, state, name, shape, encoding):
    instance = {"InstanceId": iid, "RegionId": region, "InstanceName": name}
    event = state_change_event(instance, state, shape=shape)
    parsed = parse_event(encode_body(event, encoding))
    assert isinstance(parsed, EcsEvent)
    assert (parsed.instance_id, parsed.region, parsed.state) == (iid, region, state)
    assert parsed.event_id == (
        event["id"] if shape == "a" else parse_event(encode_body(event, "raw")).event_id
    )
    assert parsed.time is not None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200), json_values.map(json.dumps)))
def test_anything_either_parses_or_raises_envelope_error(body):
    try:
        event = parse_event(body)
    except EnvelopeError:
        return
    assert isinstance(event, EcsEvent) and event.name and event.event_id


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["name", "id", "content", "regionId", "resourceId", "time", "eventTime"]), json_values
    ),
    st.booleans(),
)
def test_envelope_shaped_objects_never_crash_and_ids_are_stable(obj, b64):
    body = json.dumps(obj)
    if b64:
        body = base64.b64encode(body.encode()).decode()
    try:
        first = parse_event(body)
    except EnvelopeError:
        return
    reordered = json.dumps(dict(reversed(list(obj.items()))))
    assert parse_event(reordered).event_id == first.event_id
