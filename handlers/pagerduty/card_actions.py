"""The controls of an incident card beyond Acknowledge / Resolve: Add note (a modal), the Snooze menu,
the overflow menu (Reassign… and Set priority… open modals; Escalate and the urgency change are made at
once; Details shows `/incident show`), and the modals' submissions.

Every control names its incident in its value and is authorized with that incident as its target
(audited) before anything is asked of PagerDuty; opening a modal only checks that the clicker holds
the permission at all, and its submission is authorized like a button.
"""

from __future__ import annotations

from typing import Any

from bot.commands import ActionRequest, Reply, ViewAnswer, ViewRequest
from bot.errors import UserError
from bot.registry import CHOSEN_PERMISSION, Capability
from handlers.pagerduty import controls, forms, lookups, parsing
from handlers.pagerduty.change_job import request_change
from handlers.pagerduty.changes import Change
from handlers.pagerduty.common import card_label, client
from handlers.pagerduty.details import detail_reply
from handlers.pagerduty.incident_commands import read_details
from handlers.pagerduty.incidents import button_incident

capability = Capability("handlers.pagerduty.card_actions")

NOT_AN_INCIDENT = ":warning: This control does not name a PagerDuty incident; nothing was changed."
NO_TRIGGER = (
    ":warning: Slack did not send what opening a form needs; use `/incident {what} {incident} …` instead."
)


def _change(req: ActionRequest | ViewRequest, change: Change, what: str, response_url: str | None) -> Reply:
    audit = req.authorize(
        change.spec.permission, [change.incident], detail=f"{what} on incident {change.incident}"
    )
    label = card_label(req.services, change.incident)
    return request_change(req.services, change, req.actor, response_url, audit, label)


def _open(req: ActionRequest, view: dict[str, Any], what: str, incident_id: str) -> Reply | None:
    if not req.trigger_id:
        return Reply(NO_TRIGGER.format(what=what, incident=incident_id))
    req.services.slack.open_view(req.trigger_id, view)
    return None


# buttons and menus ---------------------------------------------------------------------------------
@capability.action(controls.NOTE_ACTION, permission="incident.note", authorizes_targets=True)
def note_button(req: ActionRequest) -> Reply | None:
    incident_id = button_incident(req.value)
    if incident_id is None:
        return Reply(NOT_AN_INCIDENT)
    return _open(
        req,
        forms.note_modal(incident_id, card_label(req.services, incident_id), req.channel_id),
        "note",
        incident_id,
    )


@capability.action(controls.SNOOZE_ACTION, permission="incident.snooze", authorizes_targets=True)
def snooze_menu(req: ActionRequest) -> Reply:
    chosen = controls.parse_snooze(req.value)
    incident_id = button_incident(chosen[1]) if chosen else None
    if chosen is None or incident_id is None:
        return Reply(NOT_AN_INCIDENT)
    return _change(
        req, Change(kind="snooze", incident=incident_id, seconds=chosen[0]), "snooze menu", req.response_url
    )


@capability.action(controls.MORE_ACTION, permission=CHOSEN_PERMISSION)
def more_menu(req: ActionRequest) -> Reply | None:
    """The overflow menu: each option is authorized with its own permission."""
    chosen = controls.parse_more(req.value)
    incident_id = button_incident(chosen[1]) if chosen else None
    if chosen is None or incident_id is None:
        return Reply(NOT_AN_INCIDENT)
    what, services = chosen[0], req.services
    if what == "show":
        req.authorize("incident.show", [incident_id], detail=f"details of incident {incident_id}")
        text, body = detail_reply(read_details(services, incident_id), req.viewer_zone())
        return Reply(text, body)
    if what == "escalate":
        return _change(req, Change(kind="escalate", incident=incident_id), "menu", req.response_url)
    if what in ("urgency-high", "urgency-low"):
        change = Change(kind="urgency", incident=incident_id, urgency=what.removeprefix("urgency-"))
        return _change(req, change, "menu", req.response_url)
    if what == "reassign":
        return _open_reassign_form(req, incident_id)
    return _open_priority_form(req, incident_id)


def _open_reassign_form(req: ActionRequest, incident_id: str) -> Reply | None:
    services = req.services
    services.authz.precheck(req.actor, "incident.reassign", detail=f"menu on incident {incident_id}")
    policies = client(services, interactive=True).find_escalation_policies("")
    view = forms.reassign_modal(incident_id, card_label(services, incident_id), req.channel_id, policies)
    return _open(req, view, "reassign", incident_id)


def _open_priority_form(req: ActionRequest, incident_id: str) -> Reply | None:
    services = req.services
    services.authz.precheck(req.actor, "incident.priority", detail=f"menu on incident {incident_id}")
    priorities = client(services, interactive=True).priorities()
    if not priorities:
        return Reply(":information_source: This PagerDuty account has no incident priorities to choose from.")
    view = forms.priority_modal(incident_id, card_label(services, incident_id), req.channel_id, priorities)
    return _open(req, view, "priority", incident_id)


# modals --------------------------------------------------------------------------------------------
def _form_incident(req: ViewRequest) -> str | None:
    value = req.metadata.get("incident")
    return button_incident(value) if isinstance(value, str) else None


@capability.view(forms.NOTE_FORM, permission="incident.note", authorizes_targets=True)
def note_submitted(req: ViewRequest) -> Reply | ViewAnswer:
    incident_id = _form_incident(req)
    if incident_id is None:
        return Reply(NOT_AN_INCIDENT)
    try:
        text = parsing.check_note(req.values.get(forms.NOTE_INPUT) or "")
    except UserError as exc:
        return ViewAnswer(errors={forms.NOTE_BLOCK: exc.message})
    return _change(req, Change(kind="note", incident=incident_id, text=text), "note form", None)


@capability.view(forms.REASSIGN_FORM, permission="incident.reassign", authorizes_targets=True)
def reassign_submitted(req: ViewRequest) -> Reply | ViewAnswer:
    incident_id = _form_incident(req)
    if incident_id is None:
        return Reply(NOT_AN_INCIDENT)
    person = req.values.get(forms.PERSON_INPUT)
    policy = forms.parse_option_value(req.values.get(forms.POLICY_INPUT))
    if bool(person) == bool(policy):
        return ViewAnswer(errors={forms.PERSON_BLOCK: "Choose one person, or one escalation policy below."})
    if policy:
        change = Change(kind="delegate", incident=incident_id, target_id=policy[0], target_name=policy[1])
        return _change(req, change, "reassign form", None)
    try:
        user = lookups.user_for_slack(req.services, str(person))
    except UserError as exc:
        return ViewAnswer(errors={forms.PERSON_BLOCK: exc.message.replace(f"<@{person}>", "This person")})
    change = Change(kind="reassign", incident=incident_id, target_id=user["id"], target_name=user["name"])
    return _change(req, change, "reassign form", None)


@capability.view(forms.PRIORITY_FORM, permission="incident.priority", authorizes_targets=True)
def priority_submitted(req: ViewRequest) -> Reply | ViewAnswer:
    incident_id = _form_incident(req)
    if incident_id is None:
        return Reply(NOT_AN_INCIDENT)
    priority = forms.parse_option_value(req.values.get(forms.PRIORITY_INPUT))
    if priority is None:
        return ViewAnswer(errors={forms.PRIORITY_BLOCK: "Choose a priority."})
    change = Change(kind="priority", incident=incident_id, target_id=priority[0], target_name=priority[1])
    return _change(req, change, "priority form", None)
