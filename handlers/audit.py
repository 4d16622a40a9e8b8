"""`/ecs audit [COUNT] [--all] [user:…] [action:…] [instance:…] [since:…]`: who changed what, newest first.

Changes (and every refusal of one) by default; `--all` adds reading (help, list, status, …), which is
kept apart. A long answer is cut at a record boundary, says how many records it does not show, and
attaches them all as a file.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass

from bot import blocks
from bot.authz import AuditRecord
from bot.commands import CommandRequest, Reply
from bot.errors import ChatOpsError, UserError
from bot.registry import Capability
from bot.render import SECONDS, escape, local_time, plural, row, zone_name

capability = Capability("handlers.audit")

USAGE = "/ecs audit [COUNT] [--all] [user:@someone] [action:ecs.stop] [instance:i-…] [since:2h|3d|2026-12-01]"
DEFAULT_COUNT, MAX_COUNT = 20, 500
INLINE_CHARS = 2800  # what one code block shows (Slack cuts a section at 3,000)
_USER = re.compile(r"^(?:<@)?([UW][A-Z0-9_]{2,})(?:\|[^>]*)?>?$")
_SINCE = re.compile(r"^(\d{1,4})([mhd])$")


@dataclass(frozen=True)
class AuditQuery:
    count: int = DEFAULT_COUNT
    reads: bool = False
    user: str | None = None
    action: str | None = None  # a glob: ecs.* matches ecs.stop
    instance: str | None = None
    since: float | None = None  # epoch seconds

    def accepts(self, r: AuditRecord) -> bool:
        return (
            (self.user is None or r.who == self.user)
            and (self.action is None or fnmatch.fnmatchcase(r.what, self.action))
            and (self.instance is None or self.instance in r.targets)
            and (self.since is None or r.time >= self.since)
        )

    @property
    def filtered(self) -> bool:
        return any(v is not None for v in (self.user, self.action, self.instance, self.since))


def parse_query(args: str, now: float, tz: dt.tzinfo) -> AuditQuery:
    """The words of `/ecs audit …` (pure)."""
    fields: dict = {}
    for word in args.split():
        key, sep, value = word.partition(":")
        if word.isdigit():
            count = int(word)
            if not 1 <= count <= MAX_COUNT:
                raise UserError(f"The count must be between 1 and {MAX_COUNT}.", USAGE)
            fields["count"] = count
        elif word == "--all":
            fields["reads"] = True
        elif sep and key == "user" and _USER.match(value):
            fields["user"] = _USER.match(value).group(1)
        elif sep and key == "action" and value:
            fields["action"] = value
        elif sep and key == "instance" and value.startswith("i-"):
            fields["instance"] = value.lower()
        elif sep and key == "since":
            fields["since"] = _since(value, now, tz)
        elif sep and key in ("user", "action", "instance"):
            raise UserError(f"`{escape(word)}`: {key}: needs a value like the usage shows.", USAGE)
        else:
            raise UserError(f"`{escape(word)}` is not a count or a filter.", USAGE)
    return AuditQuery(**fields)


def _since(value: str, now: float, tz: dt.tzinfo) -> float:
    m = _SINCE.match(value)
    if m:
        return now - int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"`since:{escape(value)}` is not a time: use 30m, 2h, 7d or a date (2026-12-01).", USAGE
        ) from None
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).timestamp()


def audit_line(r: AuditRecord, tz: dt.tzinfo) -> str:
    targets = f" on {plural(len(r.targets), 'target')}" if r.targets else ""
    who = r.origin or f"<@{r.who}>"  # a schedule's or a runbook's change is not "by <@U…>"
    return row(
        local_time(r.time, tz, SECONDS),
        who,
        f"{r.what}{targets}",
        f"→ {r.result or r.decision}",
        f"({r.detail})" if r.detail else "",
    )


@capability.subcommand(
    "/ecs",
    "audit",
    permission="ecs.audit",
    usage=USAGE,
    summary="Who changed what, newest first (changes by default, --all with reading; filters).",
)
def audit(req: CommandRequest) -> Reply:
    services = req.services
    tz = req.viewer_zone()
    query = parse_query(req.args, services.clock.time(), tz)
    found = services.authz.recent(query.count, reads=query.reads, where=query.accepts)
    what = "audit records" if query.reads else "changes"
    if not found:
        text = f"No {what}{' match' if query.filtered else ' yet'}."
        return Reply(text, [blocks.section(text)])
    lines = [audit_line(r, tz) for r in found]
    shown, size = [], 0
    for line in lines:
        if size + len(line) + 1 > INLINE_CHARS:
            break
        shown.append(line)
        size += len(line) + 1
    head = f"Last {len(found)} {what}"
    body = [
        blocks.section(f"*Audit — last {len(found)} {what}*"),
        blocks.section(blocks.code("\n".join(shown))),
    ]
    if len(shown) < len(lines):
        note = f"…and {len(lines) - len(shown)} more not shown"
        note += _attach(req, lines, head)
        body.append(blocks.context(note))
    notes = [f"Times in {zone_name(tz)}."]
    if not query.reads:
        notes.append("Reading (help, list, status, …) is left out; `--all` shows it too.")
    body.append(blocks.context(*notes))
    return Reply(head, body)


def _attach(req: CommandRequest, lines: list[str], title: str) -> str:
    channel = req.actor.channel_id
    if not channel:
        return "."
    try:
        req.services.slack.upload_text(channel, "audit.txt", "\n".join(lines) + "\n", title=title)
    except ChatOpsError:
        return " (the full list could not be attached)."
    return f" — all {len(lines)} are attached to this channel."
