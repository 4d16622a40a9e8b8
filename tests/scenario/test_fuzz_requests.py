"""Fuzzing the running app through its real entry points: signed random and mutated Slack payloads
(slash commands, block_actions, view submissions, Events API callbacks) and signed PagerDuty deliveries.
Whatever arrives: no 5xx, no trace in any answer, and nothing changed in the emulators (the caller is a
read-only user, so nothing may change). Bounded: 30 examples per kind (FUZZ_EXAMPLES=400 for a long run)."""

from __future__ import annotations

import json
import os
import string
import uuid
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.pagerduty_webhooks import sign
from tests.support import http, post_slack

CAROL = "U_CAROL"  # may only read
ECS_WRITES = {"StartInstances", "StopInstances", "RebootInstances", "RunCommand", "StopInvocation"}
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
words = st.sampled_from(
    [
        "help",
        "list",
        "status",
        "start",
        "stop",
        "reboot",
        "run",
        "schedule",
        "history",
        "audit",
        "show",
        "new",
        "ack",
        "resolve",
        "note",
        "snooze",
        "reassign",
        "priority",
        "tag:env=dev",
        "name:web-*",
        "region:mars-1",
        "--",
        "--force",
        "--dry-run",
        "template",
        "i-bp1xxxxxxxx",
        "#12",
        "<!channel>",
        "`",
        "&amp;",
        "\u0000",
        "é",
        "\n",
        "x" * 300,
    ]
)
command_text = st.lists(words | st.text(max_size=20), max_size=8).map(" ".join) | st.text(max_size=600)


@pytest.fixture
def bot(make_bot, redis_url):
    return make_bot(redis_url=redis_url, emulators=["slack", "ecs", "pagerduty"])


def unchanged(bot):
    """A snapshot of what must not change: ECS writes, PagerDuty writes and incidents."""
    ecs, pd = bot.emulator("ecs"), bot.emulator("pagerduty")
    return (
        sum(1 for c in list(ecs.calls) if c.name in ECS_WRITES),
        sum(1 for c in list(pd.calls) if c.request.method in ("POST", "PUT", "DELETE")),
        len(pd.incidents),
    )


def fine(resp) -> None:
    assert resp.status < 500, (resp.status, resp.body[:300])
    text = resp.body.decode(errors="replace")
    assert "Traceback" not in text and 'File "' not in text, text[:300]


@FUZZ
@given(command=st.sampled_from(["/ecs", "/incident", "/oncall", "/nope"]), text=command_text)
def test_slash_commands(bot, command, text):
    before = unchanged(bot)
    body = urlencode(
        {
            "command": command,
            "text": text,
            "user_id": CAROL,
            "user_name": "carol",
            "channel_id": "C_OPS",
            "team_id": "T0SANDBOX",
            "response_url": bot.emulator("slack").new_response_url("C_OPS", CAROL),
            "trigger_id": uuid.uuid4().hex,
        }
    )
    fine(post_slack(bot, body))
    assert unchanged(bot) == before


def _action_ids(bot) -> list[str]:
    return sorted(bot.services.registry.actions)


@FUZZ
@given(data=st.data())
def test_block_actions(bot, data):
    before = unchanged(bot)
    action = {
        "action_id": data.draw(st.sampled_from(_action_ids(bot)) | st.text(max_size=20)),
        "value": data.draw(st.text(max_size=200) | st.text(alphabet=string.printable, max_size=3000)),
        "type": "button",
        "block_id": "b",
    }
    payload = {
        "type": "block_actions",
        "user": {"id": CAROL, "username": "carol", "team_id": "T0SANDBOX"},
        "team": {"id": "T0SANDBOX"},
        "channel": {"id": "C_OPS"},
        "container": {"type": "message", "message_ts": "1.0", "channel_id": "C_OPS"},
        "response_url": bot.emulator("slack").new_response_url("C_OPS", CAROL),
        "actions": [action],
    }
    for _ in range(data.draw(st.integers(0, 2))):  # mutate: any key of the payload or the action
        target = data.draw(st.sampled_from([payload, action]))
        key = data.draw(st.sampled_from(sorted(target)) | st.text(max_size=8))
        target[key] = data.draw(json_value)
    if isinstance(payload.get("user"), dict) and payload["user"].get("id") is not None:
        payload["user"]["id"] = CAROL  # mutations may break the user, never make someone else click
    fine(post_slack(bot, urlencode({"payload": json.dumps(payload)})))
    assert unchanged(bot) == before


@FUZZ
@given(view=json_value, kind=st.sampled_from(["view_submission", "view_closed", "block_suggestion"]))
def test_view_payloads(bot, view, kind):
    before = unchanged(bot)
    payload = {"type": kind, "user": {"id": CAROL, "team_id": "T0SANDBOX"}, "view": view}
    fine(post_slack(bot, urlencode({"payload": json.dumps(payload)})))
    assert unchanged(bot) == before


@FUZZ
@given(event=json_value, event_type=st.sampled_from(["app_home_opened", "app_mention", "message", "x"]))
def test_events_api_callbacks(bot, event, event_type):
    before = unchanged(bot)
    if isinstance(event, dict):
        event = {**event, "type": event_type}
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0SANDBOX",
            "event_id": "Ev" + uuid.uuid4().hex,
            "event": event,
        }
    )
    fine(post_slack(bot, body, content_type="application/json"))
    assert unchanged(bot) == before


@FUZZ
@given(
    doc=json_value
    | st.fixed_dictionaries({"event": json_value})
    | st.fixed_dictionaries(
        {
            "event": st.fixed_dictionaries(
                {
                    "id": st.text(max_size=10),
                    "event_type": st.sampled_from(["incident.triggered", "incident.acknowledged", "x"]),
                    "data": json_value,
                    "agent": json_value,
                }
            )
        }
    )
    | st.fixed_dictionaries(
        {
            "messages": st.lists(
                st.fixed_dictionaries(
                    {
                        "id": st.text(max_size=8),
                        "event": st.just("incident.trigger"),
                        "data": json_value,
                        "incident": json_value,
                        "log_entries": json_value,
                    }
                ),
                max_size=3,
            )
        }
    )
)
def test_pagerduty_deliveries(bot, doc):
    before = unchanged(bot)
    body = json.dumps(doc).encode()
    secrets = bot.env["PAGERDUTY_WEBHOOK_SECRETS"].split(",")
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Id": uuid.uuid4().hex,
        "X-PagerDuty-Signature": sign(body, secrets),
    }
    fine(http("POST", bot.web_url + "/pagerduty/webhook", body, headers))
    assert unchanged(bot) == before
