"""The pure parts of incident changes from Slack: parsing the sub-commands, when a change is refused, the
PUT body it becomes, the escalation level an incident is at, and how changes read."""

from __future__ import annotations

import pytest

from bot.errors import UserError
from handlers.pagerduty import parsing
from handlers.pagerduty.changes import (
    NOTE_MAX_CHARS,
    Change,
    attributed_note,
    current_level,
    escalation_refusal,
    fallback_note,
    put_fields,
    refusal,
)


def test_sub_commands_parse_their_incident_and_arguments():
    assert parsing.parse_reassign("#3 <@U_BOB|bob>") == parsing.ReassignTo("#3", False, "<@U_BOB|bob>")
    assert parsing.parse_reassign("Q1ABC23 policy Database Escalation") == parsing.ReassignTo(
        "Q1ABC23", True, "Database Escalation"
    )
    assert parsing.parse_escalate("#3") == ("#3", None)
    assert parsing.parse_escalate("#3 level 2") == ("#3", 2)
    assert parsing.parse_snooze("#3 4 hours") == ("#3", 14400)
    assert parsing.parse_snooze("#3 24h") == ("#3", 86400)
    assert parsing.parse_urgency("#3 LOW") == ("#3", "low")
    assert parsing.parse_priority("#3 P1") == ("#3", "P1")
    assert parsing.parse_note("#3 rolling back") == ("#3", "rolling back")


@pytest.mark.parametrize(
    ("parse", "args", "why"),
    [
        (parsing.parse_reassign, "#3", "Reassign to whom?"),
        (parsing.parse_reassign, "#3 policy", "Which escalation policy?"),
        (parsing.parse_escalate, "#3 top", "is not an escalation level"),
        (parsing.parse_escalate, "#3 0", "is not an escalation level"),
        (parsing.parse_snooze, "#3 2d", "Snooze for how long?"),
        (parsing.parse_snooze, "#3", "Snooze for how long?"),
        (parsing.parse_urgency, "#3 medium", "Urgency is `high` or `low`"),
        (parsing.parse_priority, "#3", "Which priority?"),
        (parsing.parse_note, "#3   ", "The note is empty"),
        (parsing.parse_note, "", "Which incident?"),
        (parsing.parse_escalate, "what? 2", "is not a PagerDuty incident id"),
    ],
)
def test_bad_arguments_are_user_errors_with_the_usage(parse, args, why):
    with pytest.raises(UserError) as err:
        parse(args)
    assert why in err.value.message and err.value.usage


def test_a_note_over_pagerdutys_limit_is_refused_before_anything_is_sent():
    assert parsing.check_note("x" * NOTE_MAX_CHARS) == "x" * NOTE_MAX_CHARS
    with pytest.raises(UserError, match="25,001 characters; PagerDuty takes at most 25,000"):
        parsing.check_note("x" * (NOTE_MAX_CHARS + 1))


TRIGGERED = {
    "id": "Q1",
    "number": 3,
    "status": "triggered",
    "urgency": "high",
    "assignee_ids": ["PALICE"],
    "escalation_policy_id": "PEP001",
    "priority_id": None,
}


def test_refusals_say_what_is_already_so_and_what_pagerduty_would_refuse():
    snooze = Change(kind="snooze", incident="Q1", seconds=3600)
    result, text = refusal(snooze, TRIGGERED)
    assert result == "error" and "#3 is triggered; PagerDuty snoozes only acknowledged incidents" in text
    assert refusal(snooze, {**TRIGGERED, "status": "acknowledged"}) is None
    resolved = {**TRIGGERED, "status": "resolved"}
    assert refusal(Change(kind="escalate", incident="Q1"), resolved) == (
        "noop",
        ":information_source: #3 is already resolved.",
    )
    assert refusal(Change(kind="note", incident="Q1", text="postmortem"), resolved) is None  # notes still go
    to_alice = Change(kind="reassign", incident="Q1", target_id="PALICE", target_name="Alice <Admin>")
    assert refusal(to_alice, TRIGGERED) == (
        "noop",
        ":information_source: #3 is already reassigned to Alice &lt;Admin&gt;.",
    )
    assert refusal(Change(kind="urgency", incident="Q1", urgency="low"), TRIGGERED) is None
    assert refusal(Change(kind="ack", incident="Q1"), {**TRIGGERED, "status": "acknowledged"})[0] == "noop"
    result, text = refusal(Change(kind="escalate", incident="Q1"), {**TRIGGERED, "urgency": "low"})
    assert result == "error" and "#3 is low urgency; PagerDuty escalates only high-urgency incidents" in text
    assert refusal(Change(kind="escalate", incident="Q1"), TRIGGERED) is None


def test_escalation_is_refused_past_the_last_level_and_at_the_same_level():
    assert escalation_refusal("#3", "Ops", 3, 4, 3)[1].startswith(
        ":x: #3 is at level 3 of Ops, which has 3 levels"
    )
    assert escalation_refusal("#3", "Ops", None, 4, 3)[0] == "error"
    assert escalation_refusal("#3", "Ops", 2, 2, 3) == (
        "noop",
        ":information_source: #3 is already at level 2 of Ops.",
    )
    assert escalation_refusal("#3", "Ops", 1, 2, 3) is None
    assert escalation_refusal("#3", "Ops", None, 1, 0)[0] == "error"


def test_put_bodies_are_pagerdutys_shapes():
    assert put_fields(Change(kind="ack", incident="Q1")) == {"status": "acknowledged"}
    assert put_fields(Change(kind="reassign", incident="Q1", target_id="PBOB")) == {
        "assignments": [{"assignee": {"id": "PBOB", "type": "user_reference"}}]
    }
    assert put_fields(Change(kind="delegate", incident="Q1", target_id="PEP2")) == {
        "escalation_policy": {"id": "PEP2", "type": "escalation_policy_reference"}
    }
    assert put_fields(Change(kind="escalate", incident="Q1", level=2)) == {"escalation_level": 2}
    assert put_fields(Change(kind="priority", incident="Q1", target_id="PP1")) == {
        "priority": {"id": "PP1", "type": "priority_reference"}
    }
    with pytest.raises(ValueError):
        put_fields(Change(kind="snooze", incident="Q1", seconds=60))


def test_the_level_is_pagerdutys_field_else_where_an_assignee_is_on_call():
    oncalls = [
        {"user": {"id": "PALICE"}, "escalation_level": 1},
        {"user": {"id": "PBOB"}, "escalation_level": 2},
        {"user": {"id": "PBOB"}, "escalation_level": 3},
    ]
    bob = {"assignments": [{"assignee": {"id": "PBOB"}}]}
    assert current_level(bob, oncalls) == 2
    assert current_level({**bob, "escalation_level": 3}, oncalls) == 3
    assert current_level({"assignments": [{"assignee": {"id": "PNOVA"}}]}, oncalls) is None


def test_how_changes_read():
    change = Change(kind="reassign", incident="#3", target_id="PBOB", target_name="Bob <!here>")
    assert (
        change.pending("#3") == ":hourglass_flowing_sand: Reassigning `#3` to Bob &lt;!here&gt; in PagerDuty…"
    )
    snooze = Change(kind="snooze", incident="#3", seconds=4 * 3600)
    assert snooze.outcome() == "snoozed for 4 hours"
    assert Change(kind="escalate", incident="#3").pending("#3").endswith("to the next level in PagerDuty…")
    assert fallback_note(snooze, "Nova New") == (
        "The incident was snoozed for 4 hours from Slack by Nova New, who has no PagerDuty user."
    )
    assert attributed_note("on it", "Nova New") == "on it\n\n— Nova New, from Slack"
