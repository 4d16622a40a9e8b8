"""`/ecs audit [COUNT] [page:N] [--all] [--csv] [user:…] [action:…] [instance:…] [since:…]`: who changed
what, newest first, and the retention of the trail.

Changes (and every refusal of one) by default; `--all` adds reading (help, list, status, …), which is
kept apart. One line per change: its newest record (the result, once there is one) stands for the
decision before it. `user:` matches the requester or the approver. Pages of COUNT lines (`page:2` …)
with the honest number of matches; a long page is cut at a record boundary and attached whole as a
file. `--csv` uploads every record of the matching changes (up to `CSV_MAX`) as `audit.csv`.

Retention: the policy's `audit.retention_days` (default 90); the `audit.retention` periodic job drops
older records from the oldest end of both lists.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from bot import blocks
from bot.audit import AuditLog, AuditRecord, Scan, latest_per_change, of_matching_changes
from bot.commands import CommandRequest, Reply
from bot.errors import ChatOpsError, UserError
from bot.registry import Capability
from bot.render import escape, plural, zone_name
from handlers.audit_render import audit_line, csv_text, span_text

capability = Capability("handlers.audit")

log = logging.getLogger(__name__)

USAGE = (
    "/ecs audit [COUNT] [page:N] [--all] [--csv] [user:@someone] [action:ecs.stop] [instance:i-…] "
    "[since:2h|3d|2026-12-01]"
)
DEFAULT_COUNT, MAX_COUNT = 20, 500
MAX_PAGE = 100_000  # past what the lists hold (2 × AUDIT_MAX records) at one per page
CSV_MAX = 10_000  # rows of one export
INLINE_CHARS = 2800  # what one code block shows (Slack cuts a section at 3,000)
_USER = re.compile(r"^(?:<@)?([UW][A-Z0-9_]{2,})(?:\|[^>]*)?>?$")
_SINCE = re.compile(r"^(\d{1,4})([mhd])$", re.ASCII)
_FILTERS = ("user", "action", "instance", "since", "page")


class AuditPolicy(BaseModel):
    """The policy's `audit` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retention_days: int = Field(default=90, ge=1)  # records older than this are dropped


capability.policy_section("audit", AuditPolicy)


@dataclass(frozen=True)
class AuditQuery:
    count: int = DEFAULT_COUNT
    page: int = 1
    reads: bool = False
    csv: bool = False
    user: str | None = None
    action: str | None = None  # a glob: ecs.* matches ecs.stop
    instance: str | None = None
    since: float | None = None  # epoch seconds
    words: tuple[str, ...] = ()  # what was asked, but the page and --csv (for the next page's command)

    def accepts(self, r: AuditRecord) -> bool:
        return (
            (self.user is None or self.user in (r.who, r.approver))
            and (self.action is None or fnmatch.fnmatchcase(r.what, self.action))
            and (self.instance is None or self.instance in r.targets)
            and (self.since is None or r.time >= self.since)
        )

    @property
    def filtered(self) -> bool:
        return any(v is not None for v in (self.user, self.action, self.instance, self.since))

    def command(self, page: int) -> str:
        """The command that shows `page` of the same query."""
        return " ".join(["/ecs audit", *self.words, f"page:{page}"])


def parse_query(args: str, now: float, tz: dt.tzinfo) -> AuditQuery:
    """The words of `/ecs audit …` (pure). A filter given twice: the last one counts."""
    fields: dict = {}
    words: dict[str, str] = {}  # one word per kind, in the order first given
    for word in args.split():
        key, sep, value = word.partition(":")
        if _digits(word):
            fields["count"] = _number(word, MAX_COUNT, "The count")
            words["count"] = word
        elif word == "--all":
            fields["reads"] = True
            words["--all"] = word
        elif word == "--csv":
            fields["csv"] = True
        elif sep and key == "page" and _digits(value):
            fields["page"] = _number(value, MAX_PAGE, "The page")
        elif sep and key == "user" and _USER.match(value):
            fields["user"] = _USER.match(value).group(1)
            words["user"] = f"user:{fields['user']}"
        elif sep and key == "action" and value:
            fields["action"] = value
            words["action"] = word
        elif sep and key == "instance" and value.lower().startswith("i-"):
            fields["instance"] = value.lower()
            words["instance"] = f"instance:{fields['instance']}"
        elif sep and key == "since":
            fields["since"] = _since(value, now, tz)
            words["since"] = word
        elif sep and key in _FILTERS:
            raise UserError(f"`{escape(word)}`: {key}: needs a value like the usage shows.", USAGE)
        else:
            raise UserError(f"`{escape(word)}` is not a count, an option or a filter.", USAGE)
    return AuditQuery(**fields, words=tuple(words.values()))


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit() alone also takes "¹", which int() refuses


def _number(text: str, most: int, what: str) -> int:
    n = int(text)
    if not 1 <= n <= most:
        raise UserError(f"{what} must be between 1 and {most:,}.", USAGE)
    return n


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


@dataclass(frozen=True)
class Page:
    """One page of the matching changes, and how many match in all."""

    records: list[AuditRecord]
    first: int  # 1-based position of the first record shown
    total: int
    capped: bool  # the scan stopped before the end of the trail: `total` is a lower bound

    @property
    def last(self) -> int:
        return self.first + len(self.records) - 1


def page_of(scan: Scan, query: AuditQuery) -> Page:
    """The query's page of changes (newest record per id) from `scan`, counting every match."""
    skip = (query.page - 1) * query.count
    shown: list[AuditRecord] = []
    total = 0
    for record in latest_per_change(scan):
        if not query.accepts(record):
            continue
        if skip <= total < skip + query.count:
            shown.append(record)
        total += 1
    return Page(shown, skip + 1, total, scan.capped)


@capability.subcommand(
    "/ecs",
    "audit",
    permission="ecs.audit",
    usage=USAGE,
    summary="Who changed what, newest first (changes by default, --all with reading; filters, pages, --csv).",
)
def audit(req: CommandRequest) -> Reply:
    services = req.services
    tz = req.viewer_zone()
    query = parse_query(req.args, services.clock.time(), tz)
    scan = AuditLog(services.store).scan(reads=query.reads)
    if query.csv:
        return export(req, query, scan)
    return listing(req, query, page_of(scan, query), tz)


def listing(req: CommandRequest, query: AuditQuery, page: Page, tz: dt.tzinfo) -> Reply:
    what = "audit records" if query.reads else "changes"
    if not page.total:
        text = f"No {what}{' match' if query.filtered else ' yet'}."
        return Reply(text, [blocks.section(text)])
    if not page.records:
        pages = -(-page.total // query.count)
        many = f"{page.total}{'+' if page.capped else ''} {what if page.total > 1 else what[:-1]}"
        text = f"Page {query.page} is past the end: {many} match ({plural(pages, 'page')} of {query.count})."
        return Reply(text, [blocks.section(text)])
    lines = [audit_line(r, tz) for r in page.records]
    shown, size = [], 0
    for line in lines:
        if size + len(line) + 1 > INLINE_CHARS:
            break
        shown.append(line)
        size += len(line) + 1
    span = span_text(page.first, page.last, page.total, page.capped)
    if query.page == 1:
        head = f"Last {len(page.records)} {what}"
        title = f"*Audit — last {len(page.records)} {what}*"
    else:
        head = f"{what.capitalize()} {span}"
        title = f"*Audit — {what} {span}*"
    body = [blocks.section(title), blocks.section(blocks.code("\n".join(shown)))]
    if len(shown) < len(lines):
        note = f"…and {len(lines) - len(shown)} more not shown"
        note += _attach(req, lines, head)
        body.append(blocks.context(note))
    if page.last < page.total:
        body.append(blocks.context(f"Showing {span} · `{escape(query.command(query.page + 1))}` for more"))
    elif page.capped:
        body.append(blocks.context(f"Showing {span}: older records were not read; narrow it with `since:`."))
    elif query.page > 1:
        body.append(blocks.context(f"Showing {span}"))
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


def export(req: CommandRequest, query: AuditQuery, scan: Scan) -> Reply:
    """Every record of the matching changes (newest first, up to CSV_MAX) as `audit.csv`."""
    rows: list[AuditRecord] = []
    total = 0
    for record in of_matching_changes(scan, query.accepts):
        if total < CSV_MAX:
            rows.append(record)
        total += 1
    what = "audit records" if query.reads else "records of changes"
    if not rows:
        text = f"No {what}{' match' if query.filtered else ' yet'}: nothing to export."
        return Reply(text, [blocks.section(text)])
    channel = req.actor.channel_id
    if not channel:
        raise UserError(
            "`--csv` uploads a file to the channel the command is typed in; type it in a channel."
        )
    asked = " ".join(query.words)
    title = f"Audit trail: {plural(len(rows), 'record')}" + (f" ({asked})" if asked else "")
    req.services.slack.upload_text(channel, "audit.csv", csv_text(rows), title=title)
    counted = f"{total:,}{'+' if scan.capped else ''}"
    text = f"Exported {plural(len(rows), 'record')} to `audit.csv` in this channel"
    text += f": the newest {len(rows):,} of {counted}." if total > len(rows) or scan.capped else "."
    notes = [
        "One row per record: a change's decision and its result share the `id`. Times in UTC (ISO 8601)."
    ]
    if total > len(rows):
        notes.append("Narrow it with `since:` or a filter for the older ones.")
    return Reply(text, [blocks.section(text), blocks.context(*notes)])


@capability.periodic("audit.retention", minute="23")
def trim_audit(services) -> int:
    """Drop the records older than the policy's `audit.retention_days` from both lists."""
    section = getattr(services.policy, "audit", None) or AuditPolicy()
    before = services.clock.time() - section.retention_days * 86400
    removed = AuditLog(services.store).trim(before)
    if removed:
        log.info(
            "audit records past the retention dropped",
            extra={"removed": removed, "retention_days": section.retention_days},
        )
    return removed
