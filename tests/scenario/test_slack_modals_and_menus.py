"""Menus and modals through the real entry point: an overflow option or a picked user arrives as the
action's value, a button opens a modal with its trigger_id, and the modal's submission is authorized,
audited and answered (errors keep it open; a reply goes to the submitter only). Malformed bodies of
these kinds are 400s."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from bot import blocks
from bot.commands import Reply, ViewAnswer, ViewRequest
from bot.registry import Capability, Registry
from bot.render import escape
from tests.support import choose, click, ephemerals, post_slack, submit_view, wait_for

toy = Capability("tests.modals_and_menus")
FORM = "test.form"


@toy.action("test.open_form", permission="test.form")
def open_form(req) -> Reply | None:
    field = blocks.text_input("said", "What happened?", "text", max_length=50)
    view = blocks.modal(FORM, "Tell us", [field], "Send", {"channel": req.channel_id, "about": req.value})
    req.services.slack.open_view(req.trigger_id, view)
    return None


@toy.view(FORM, permission="test.form")
def submit_form(req: ViewRequest) -> Reply | ViewAnswer:
    text = (req.values.get("text") or "").strip()
    if text == "boom":
        raise RuntimeError("internals: /etc/passwd")
    if not text:
        return ViewAnswer(errors={"said": "Say what happened."})
    return Reply(f"{req.metadata['about']}: you said {escape(text)}")


@toy.action("test.menu", permission="test.form")
def menu(req) -> Reply:
    return Reply(f"chosen: {escape(req.value)}")


@pytest.fixture
def bot(make_bot, redis_url):
    return make_bot(
        redis_url=redis_url, emulators=["slack"], worker=False, registry=Registry.discover(extra=[toy])
    )


def test_a_button_opens_a_modal_whose_submission_is_authorized_audited_and_answered(bot):
    slack = bot.emulator("slack")
    assert click(bot, {"action_id": "test.open_form", "value": "disk"}, user="U_ALICE").status == 200
    [opened] = [v["view"] for v in slack.views if v["kind"] == "modal"]
    assert opened["callback_id"] == FORM and json.loads(opened["private_metadata"])["channel"] == "C_OPS"

    empty = submit_view(bot, opened, {"text": "  "}, user="U_ALICE")
    assert empty.status == 200 and empty.json() == {
        "response_action": "errors",
        "errors": {"said": "Say what happened."},
    }
    done = submit_view(bot, opened, {"text": "<!channel> full"}, user="U_ALICE")
    assert done.status == 200 and "errors" not in done.text  # the modal closes
    wait_for(
        lambda: "disk: you said &lt;!channel&gt; full" in ephemerals(slack, "U_ALICE"), message="the reply"
    )
    audited = [
        r for r in bot.services.authz.recent(20) if r.what == "test.form" and r.detail == f"form {FORM}"
    ]
    assert audited and audited[0].decision == "allow" and audited[0].who == "U_ALICE"

    refused = submit_view(bot, opened, {"text": "hello"}, user="U_CAROL")
    assert refused.status == 200
    wait_for(lambda: any("not allowed" in t for t in ephemerals(slack, "U_CAROL")), message="the refusal")
    assert [r.decision for r in bot.services.authz.recent(20) if r.who == "U_CAROL"][:1] == ["deny"]

    bug = submit_view(bot, opened, {"text": "boom"}, user="U_ALICE")
    assert bug.status == 200 and "Traceback" not in bug.text
    text = wait_for(lambda: [t for t in ephemerals(slack, "U_ALICE") if "Reference: `" in t])[0]
    assert "/etc/passwd" not in text


def test_menu_options_and_picked_users_arrive_as_the_value(bot):
    slack = bot.emulator("slack")
    menu_el = blocks.overflow(
        "test.menu", [blocks.option("Escalate", "escalate:Q1"), blocks.option("Show", "show:Q1")]
    )
    assert choose(bot, menu_el, "escalate:Q1").status == 200
    picker = {"type": "users_select", "action_id": "test.menu"}
    assert choose(bot, picker, "U_BOB").status == 200
    wait_for(
        lambda: {"chosen: escalate:Q1", "chosen: U_BOB"} <= set(ephemerals(slack, "U_ALICE")), message="both"
    )


ALICE = {"id": "U_ALICE", "username": "alice", "team_id": "T0SANDBOX"}
VIEW = {"type": "view_submission", "user": ALICE, "team": {"id": "T0SANDBOX"}}
MALFORMED = {
    "view a string": {**VIEW, "view": "garbage"},
    "view without callback_id": {**VIEW, "view": {"state": {"values": {}}}},
    "values a list": {**VIEW, "view": {"callback_id": FORM, "state": {"values": []}}},
    "an input a string": {**VIEW, "view": {"callback_id": FORM, "state": {"values": {"b": {"a": "x"}}}}},
    "a value an object": {
        **VIEW,
        "view": {"callback_id": FORM, "state": {"values": {"b": {"a": {"value": {"x": 1}}}}}},
    },
    "selected_option a string": {
        **VIEW,
        "view": {"callback_id": FORM, "state": {"values": {"b": {"a": {"selected_option": "x"}}}}},
    },
    "metadata too long": {**VIEW, "view": {"callback_id": FORM, "private_metadata": "x" * 3001}},
    "no user": {"type": "view_submission", "view": {"callback_id": FORM}},
    "menu option without a value": {
        "type": "block_actions",
        "user": ALICE,
        "actions": [{"action_id": "test.menu", "selected_option": {"text": "x"}}],
    },
    "picked user not an id": {
        "type": "block_actions",
        "user": ALICE,
        "actions": [{"action_id": "test.menu", "selected_user": ["U_BOB"]}],
    },
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_menu_and_modal_payloads_are_400s_and_run_nothing(bot, name):
    before = len(bot.services.authz.recent(100))
    resp = post_slack(bot, urlencode({"payload": json.dumps(MALFORMED[name])}))
    assert resp.status == 400, resp.text
    assert len(bot.services.authz.recent(100)) == before
