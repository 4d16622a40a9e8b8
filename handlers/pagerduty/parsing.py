"""Parsing of `/incident` and `/oncall` arguments, pure. Errors are UserErrors with the usage attached."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from bot.errors import UserError
from bot.render import escape
from handlers.pagerduty.changes import NOTE_MAX_CHARS, SNOOZE_CHOICES, URGENCIES

LIST_USAGE = "/incident list [open|triggered|acknowledged|resolved|all]"
NEW_USAGE = "/incident new TITLE [--service SERVICE_ID] [--urgency high|low]"
ACK_USAGE = "/incident ack INCIDENT   (its id, e.g. Q1ABC23DEF, or the #number on its card)"
RESOLVE_USAGE = "/incident resolve INCIDENT   (its id, e.g. Q1ABC23DEF, or the #number on its card)"
ONCALL_USAGE = "/oncall [ESCALATION POLICY or SCHEDULE NAME]"
SHOW_USAGE = "/incident show INCIDENT   (details, timeline and notes, with its buttons)"
REASSIGN_USAGE = (
    "/incident reassign INCIDENT @user|E-MAIL|NAME   or   /incident reassign INCIDENT policy POLICY NAME"
)
ESCALATE_USAGE = "/incident escalate INCIDENT [LEVEL]   (default: the next level of its escalation policy)"
NOTE_USAGE = "/incident note INCIDENT TEXT"
SNOOZE_USAGE = "/incident snooze INCIDENT 1h|4h|24h   (acknowledged incidents only)"
PRIORITY_USAGE = "/incident priority INCIDENT PRIORITY   (one of the account's, e.g. P1)"
URGENCY_USAGE = "/incident urgency INCIDENT high|low"

LIST_STATUSES = {
    "open": ["triggered", "acknowledged"],
    "": ["triggered", "acknowledged"],
    "triggered": ["triggered"],
    "acknowledged": ["acknowledged"],
    "ack": ["acknowledged"],
    "resolved": ["resolved"],
    "all": ["triggered", "acknowledged", "resolved"],
}

_ID = re.compile(r"^[A-Z0-9]{5,20}$")


@dataclass(frozen=True)
class NewIncident:
    title: str
    service_id: str | None
    urgency: str | None


def parse_list(args: str) -> tuple[str, list[str]]:
    word = args.strip().lower()
    if word not in LIST_STATUSES:
        raise UserError(f"`{args.strip()}` is not an incident status.", LIST_USAGE)
    return (word or "open"), LIST_STATUSES[word]


def parse_new(args: str) -> NewIncident:
    try:
        tokens = shlex.split(args)
    except ValueError:
        tokens = args.split()
    title_words: list[str] = []
    service = urgency = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("--service", "--urgency") or tok.startswith(("--service=", "--urgency=")):
            name, _, value = tok.partition("=")
            if not value:
                if i + 1 >= len(tokens):
                    raise UserError(f"`{name}` needs a value.", NEW_USAGE)
                value = tokens[i + 1]
                i += 1
            if name == "--service":
                service = value.strip()
            else:
                urgency = value.strip().lower()
                if urgency not in ("high", "low"):
                    raise UserError(f"Urgency must be `high` or `low`, not `{value}`.", NEW_USAGE)
        elif tok.startswith("--"):
            raise UserError(f"Unknown option `{tok}`.", NEW_USAGE)
        else:
            title_words.append(tok)
        i += 1
    title = " ".join(title_words).strip()
    if not title:
        raise UserError("Give the incident a title.", NEW_USAGE)
    if len(title) > 1024:
        raise UserError("The title is longer than PagerDuty's 1024 characters.", NEW_USAGE)
    return NewIncident(title, service, urgency)


def parse_incident_id(args: str, usage: str) -> str:
    """An incident id (`Q1ABC23DEF`) or the number its card shows (`#12` or `12`, returned as `#12`)."""
    value = args.strip()
    if not value:
        raise UserError(
            "Which incident? Give its PagerDuty id (`Q1ABC23DEF`) or the number on its card (`#12`).", usage
        )
    number = value.removeprefix("#")
    if number.isdigit() and 0 < int(number) < 10**9:
        return f"#{int(number)}"
    if " " in value or not _ID.match(value.upper()):
        raise UserError(
            f"`{escape(value)}` is not a PagerDuty incident id (`Q1ABC23DEF`) or an incident number (`#12`).",
            usage,
        )
    return value.upper()


def split_incident(args: str, usage: str) -> tuple[str, str]:
    """(the incident, the rest of the arguments) of `INCIDENT ...`."""
    first, _, rest = args.strip().partition(" ")
    return parse_incident_id(first, usage), rest.strip()


@dataclass(frozen=True)
class ReassignTo:
    incident: str
    policy: bool  # True: `who` names an escalation policy, else a person
    who: str


def parse_reassign(args: str) -> ReassignTo:
    incident, rest = split_incident(args, REASSIGN_USAGE)
    word, _, name = rest.partition(" ")
    if word.lower() in ("policy", "--policy", "ep"):
        if not name.strip():
            raise UserError("Which escalation policy? Give its name.", REASSIGN_USAGE)
        return ReassignTo(incident, True, name.strip())
    if not rest:
        raise UserError("Reassign to whom? Mention the person, or give their e-mail or name.", REASSIGN_USAGE)
    return ReassignTo(incident, False, rest)


def parse_escalate(args: str) -> tuple[str, int | None]:
    incident, rest = split_incident(args, ESCALATE_USAGE)
    if not rest:
        return incident, None
    level = rest.lower().removeprefix("level").strip()
    if not level.isdigit() or not 0 < int(level) < 100:
        raise UserError(f"`{escape(rest)}` is not an escalation level (1, 2, …).", ESCALATE_USAGE)
    return incident, int(level)


def parse_note(args: str) -> tuple[str, str]:
    incident, text = split_incident(args, NOTE_USAGE)
    return incident, check_note(text, NOTE_USAGE)


def check_note(text: str, usage: str | None = None) -> str:
    """A note's text as PagerDuty takes it (not empty, at most its 25,000 characters)."""
    text = text.strip()
    if not text:
        raise UserError("The note is empty: write what to add.", usage)
    if len(text) > NOTE_MAX_CHARS:
        raise UserError(
            f"The note is {len(text):,} characters; PagerDuty takes at most {NOTE_MAX_CHARS:,}. "
            "Nothing was added.",
            usage,
        )
    return text


def parse_snooze(args: str) -> tuple[str, int]:
    incident, rest = split_incident(args, SNOOZE_USAGE)
    choice = rest.lower().replace(" ", "").replace("hours", "h").replace("hour", "h")
    if choice not in SNOOZE_CHOICES:
        known = ", ".join(f"`{c}`" for c in SNOOZE_CHOICES)
        raise UserError(f"Snooze for how long? One of {known}.", SNOOZE_USAGE)
    return incident, SNOOZE_CHOICES[choice]


def parse_priority(args: str) -> tuple[str, str]:
    incident, name = split_incident(args, PRIORITY_USAGE)
    if not name:
        raise UserError("Which priority? Give its name (e.g. `P1`).", PRIORITY_USAGE)
    return incident, name


def parse_urgency(args: str) -> tuple[str, str]:
    incident, urgency = split_incident(args, URGENCY_USAGE)
    if urgency.lower() not in URGENCIES:
        raise UserError("Urgency is `high` or `low`.", URGENCY_USAGE)
    return incident, urgency.lower()
