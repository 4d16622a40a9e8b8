"""Parsing of `/incident` and `/oncall` arguments, pure. Errors are UserErrors with the usage attached."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from bot.errors import UserError
from bot.render import escape

LIST_USAGE = "/incident list [open|triggered|acknowledged|resolved|all]"
NEW_USAGE = "/incident new TITLE [--service SERVICE_ID] [--urgency high|low]"
ACK_USAGE = "/incident ack INCIDENT   (its id, e.g. Q1ABC23DEF, or the #number on its card)"
RESOLVE_USAGE = "/incident resolve INCIDENT   (its id, e.g. Q1ABC23DEF, or the #number on its card)"
ONCALL_USAGE = "/oncall [ESCALATION POLICY or SCHEDULE NAME]"

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
