"""The modals of incident cards, pure: Add a note, Reassign (a person from Slack's user picker, or an
escalation policy), Set priority. Each carries the incident and the channel in its metadata; the
submission's handlers are in `card_actions`."""

from __future__ import annotations

from typing import Any

from bot import blocks
from bot.render import escape

NOTE_FORM = "pagerduty.note_form"
REASSIGN_FORM = "pagerduty.reassign_form"
PRIORITY_FORM = "pagerduty.priority_form"

NOTE_BLOCK, NOTE_INPUT = "note", "note_text"
PERSON_BLOCK, PERSON_INPUT = "person", "person_user"
POLICY_BLOCK, POLICY_INPUT = "policy", "policy_id"
PRIORITY_BLOCK, PRIORITY_INPUT = "priority", "priority_id"

SLACK_TEXT_MAX = 3000  # the most a plain_text_input takes


def _metadata(incident_id: str, channel: str | None) -> dict[str, Any]:
    return {"incident": incident_id, "channel": channel}


def note_modal(incident_id: str, label: str, channel: str | None) -> dict[str, Any]:
    body = [
        blocks.section(f"A note on *{escape(label)}*, kept in PagerDuty and shown in the card's thread."),
        blocks.text_input(NOTE_BLOCK, "Note", NOTE_INPUT, multiline=True, max_length=SLACK_TEXT_MAX),
    ]
    return blocks.modal(NOTE_FORM, "Add a note", body, "Add note", _metadata(incident_id, channel))


def reassign_modal(
    incident_id: str, label: str, channel: str | None, policies: list[dict[str, Any]]
) -> dict[str, Any]:
    body = [
        blocks.section(f"Reassign *{escape(label)}* to one person, or to an escalation policy."),
        blocks.user_input(
            PERSON_BLOCK,
            "A person",
            PERSON_INPUT,
            optional=True,
            hint="Found in PagerDuty by their Slack e-mail.",
        ),
    ]
    if policies:
        options = [blocks.option(str(p.get("name") or p["id"]), option_value(p)) for p in policies]
        body.append(
            blocks.select_input(POLICY_BLOCK, "Or an escalation policy", POLICY_INPUT, options, optional=True)
        )
    return blocks.modal(
        REASSIGN_FORM, f"Reassign {label}"[:24], body, "Reassign", _metadata(incident_id, channel)
    )


def priority_modal(
    incident_id: str, label: str, channel: str | None, priorities: list[dict[str, Any]]
) -> dict[str, Any]:
    options = [
        blocks.option(
            f"{p.get('name')}" + (f" — {p['description']}" if p.get("description") else ""), option_value(p)
        )
        for p in priorities
    ]
    body = [blocks.select_input(PRIORITY_BLOCK, f"Priority of {label}", PRIORITY_INPUT, options)]
    return blocks.modal(PRIORITY_FORM, "Set priority", body, "Set", _metadata(incident_id, channel))


def option_value(item: dict[str, Any]) -> str:
    """`ID:NAME`: a policy or a priority as a menu option carries it (PagerDuty ids have no colon)."""
    return f"{item['id']}:{item.get('name') or item.get('summary') or item['id']}"[:150]


def parse_option_value(value: str | None) -> tuple[str, str] | None:
    """(id, name) of a chosen option, None when nothing (or nothing of ours) was chosen."""
    item_id, sep, name = (value or "").partition(":")
    return (item_id, name) if sep and item_id and name else None
