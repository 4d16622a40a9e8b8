"""Signed but malformed Slack bodies: a 400 (or a 200 for a kind the app ignores), never a 500, and
nothing runs. Through the real entry point (signed HTTP requests into the running app)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from tests.support import post_slack

ALICE = {"id": "U_ALICE", "username": "alice", "team_id": "T0SANDBOX"}
BASE = {"type": "block_actions", "user": ALICE, "team": {"id": "T0SANDBOX"}, "api_app_id": "A0SANDBOX"}
BUTTON = {"action_id": "plan.confirm", "value": "x"}

PAYLOADS = {
    "actions as a string": {**BASE, "actions": "plan.confirm"},
    "actions empty": {**BASE, "actions": []},
    "actions of strings": {**BASE, "actions": ["plan.confirm"]},
    "actions of ints": {**BASE, "actions": [1, 2]},
    "actions null": {**BASE, "actions": None},
    "action_id missing": {**BASE, "actions": [{"value": "x"}]},
    "action_id an int": {**BASE, "actions": [{"action_id": 7}]},
    "value an object": {**BASE, "actions": [{"action_id": "plan.confirm", "value": {"a": 1}}]},
    "user a string": {**BASE, "user": "U_ALICE", "actions": [BUTTON]},
    "channel a string": {**BASE, "channel": "C_OPS", "actions": [BUTTON]},
    "container a list": {**BASE, "container": [], "actions": [BUTTON]},
}
IGNORED = {
    "block_suggestion": {"type": "block_suggestion", "value": 3},
    "interactive_message": {"type": "interactive_message", "actions": 4},
    "dialog_submission": {"type": "dialog_submission"},
    "view_closed": {"type": "view_closed", "view": None},
}
EVENTS = {
    "event a string": {"type": "event_callback", "event_id": "Ev1", "event": "x"},
    "event type an int": {"type": "event_callback", "event_id": "Ev2", "event": {"type": 5}},
    "app_home_opened without a user": {
        "type": "event_callback",
        "event_id": "Ev3",
        "event": {"type": "app_home_opened"},
    },
    "app_mention without a channel": {
        "type": "event_callback",
        "event_id": "Ev4",
        "event": {"type": "app_mention"},
    },
    "type an int": {"type": 5},
}


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    from sandbox.stack import BotStack

    stack = BotStack(data_dir=tmp_path_factory.mktemp("bot"), emulators=["slack"], worker=False).start()
    yield stack
    stack.stop()


def interactive(payload_text: str) -> str:
    return urlencode({"payload": payload_text})


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_a_malformed_button_payload_is_a_400_and_runs_nothing(bot, name):
    before = len(bot.services.authz.recent(100))
    resp = post_slack(bot, interactive(json.dumps(PAYLOADS[name])))
    assert resp.status == 400, resp.text
    assert "Traceback" not in resp.text
    assert len(bot.services.authz.recent(100)) == before  # nothing was decided, nothing ran


@pytest.mark.parametrize("name", sorted(IGNORED))
def test_a_kind_the_app_does_not_handle_is_acknowledged_and_ignored(bot, name):
    resp = post_slack(bot, interactive(json.dumps(IGNORED[name])))
    assert resp.status == 200 and resp.json()["ignored"] == IGNORED[name]["type"]


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_a_malformed_event_is_a_400(bot, name):
    resp = post_slack(bot, json.dumps(EVENTS[name]), content_type="application/json")
    assert resp.status == 400, resp.text


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "block_actions", "x": NaN}',
        '{"type": "block_actions", "x": Infinity}',
        "[" * 5000 + "]" * 5000,
    ],
)
def test_json_that_is_not_json_is_a_400(bot, text):
    assert post_slack(bot, interactive(text)).status == 400
    assert post_slack(bot, text, content_type="application/json").status == 400


def test_a_well_formed_click_still_gets_through(bot):
    resp = post_slack(
        bot, interactive(json.dumps({**BASE, "actions": [{"action_id": "plan.confirm", "value": "nope"}]}))
    )
    assert resp.status == 200
    unhandled = {
        "type": "event_callback",
        "event_id": "Ev9",
        "event": {"type": "reaction_added", "user": "U_ALICE"},
    }
    resp = post_slack(bot, json.dumps(unhandled), content_type="application/json")
    assert resp.status == 200
