"""Finding what a request names, in PagerDuty: the incident a card's number stands for, the PagerDuty user
for a Slack user (by e-mail) or for a typed e-mail or name, an escalation policy, a priority. A name
that matches nothing, or several things, is a UserError saying so (shown ephemeral; nothing changes).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bot.adapters.pagerduty import PagerDutyError
from bot.errors import UserError
from bot.render import escape
from handlers.pagerduty.common import client, number_key

if TYPE_CHECKING:
    from bot.adapters.pagerduty import PagerDuty
    from bot.services import Services

_MENTION = re.compile(r"^<@([A-Z0-9_]{2,30})(?:\|[^>]*)?>$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def incident_by_number(services: Services, pd: PagerDuty, number: str) -> str | None:
    """The id of the incident whose card shows #number: remembered when its card was posted, else
    found among the open incidents."""
    known = services.store.get(number_key(number))
    if known:
        return known
    for incident in pd.list_incidents(statuses=["triggered", "acknowledged"], limit=100):
        if str(incident.get("incident_number") or incident.get("number") or "") == number:
            return str(incident["id"])
    return None


def unknown_number(ref: str) -> str:
    return (
        f":x: No open incident {ref} is known here; give its id (`Q1ABC23DEF`, from `/incident list`) "
        "or the number on its card."
    )


def get_incident(services: Services, pd: PagerDuty, ref: str) -> dict[str, Any]:
    """The incident an id or a card's `#number` names (PagerDuty's REST answer); UserError when
    PagerDuty has none."""
    incident_id = ref
    if ref.startswith("#"):
        found = incident_by_number(services, pd, ref[1:])
        if found is None:
            raise UserError(unknown_number(ref))
        incident_id = found
    try:
        return pd.get_incident(incident_id)
    except PagerDutyError as exc:
        if exc.status == 404:
            raise UserError(
                f":x: PagerDuty has no incident `{escape(incident_id)}`; `/incident list` shows the open ones."
            ) from None
        raise


def user_for_slack(services: Services, slack_user_id: str) -> dict[str, Any]:
    """The PagerDuty user with the Slack user's e-mail."""
    email = services.slack.user_email(slack_user_id)
    if not email:
        raise UserError(
            f"Slack does not show an e-mail for <@{slack_user_id}>, so no PagerDuty user can be found."
        )
    found = client(services, interactive=True).find_user_by_email(email)
    if found is None:
        raise UserError(
            f"<@{slack_user_id}> has no PagerDuty user (none has the e-mail {escape(email)}); pick someone "
            "who has, or reassign to an escalation policy."
        )
    return found


def user_named(services: Services, text: str) -> dict[str, Any]:
    """The PagerDuty user a request names: a Slack mention (`<@U123>`), an e-mail, or a name that
    matches exactly one PagerDuty user."""
    text = text.strip()
    mention = _MENTION.match(text)
    if mention:
        return user_for_slack(services, mention.group(1))
    pd = client(services, interactive=True)
    if _EMAIL.match(text):
        found = pd.find_user_by_email(text)
        if found is None:
            raise UserError(f"No PagerDuty user has the e-mail {escape(text)}.")
        return found
    return _one(pd.find_users(text.removeprefix("@"), limit=10), text, "PagerDuty user", "their e-mail")


def policy_named(services: Services, name: str) -> dict[str, Any]:
    return _one(
        client(services, interactive=True).find_escalation_policies(name),
        name,
        "escalation policy",
        "more of its name",
    )


def priority_named(services: Services, name: str) -> dict[str, Any]:
    priorities = client(services, interactive=True).priorities()
    if not priorities:
        raise UserError("This PagerDuty account has no incident priorities (its plan may not include them).")
    wanted = name.strip().lower()
    for priority in priorities:
        if wanted in (str(priority.get("name") or "").lower(), str(priority.get("id") or "").lower()):
            return priority
    known = ", ".join(f"`{escape(p.get('name'))}`" for p in priorities)
    raise UserError(f"`{escape(name)}` is not one of this account's priorities: {known}.")


def _one(found: list[dict[str, Any]], text: str, what: str, more: str) -> dict[str, Any]:
    wanted = text.strip().removeprefix("@").lower()
    exact = [f for f in found if str(f.get("name") or f.get("summary") or "").lower() == wanted]
    if len(exact) == 1 or len(found) == 1:
        return (exact or found)[0]
    if not found:
        raise UserError(f"No {what} matches `{escape(text)}`.")
    names = ", ".join(escape(f.get("name") or f.get("summary") or f.get("id")) for f in found[:5])
    raise UserError(f"Several {what}s match `{escape(text)}`: {names}. Give {more}.")
