"""How `/ecs audit` writes the trail (pure): one compact line per change for a code block, and the CSV
export with every record.

A line: `2026-05-01 10:00:00  <@U1>  ecs.stop on 3 targets  → ok (approved by <@U2>)  [role devs]  (…)`.
Text that did not come from the bot (details, origins, rules) is escaped. CSV cells that a spreadsheet
would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) start with `'`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable

from bot.audit import AuditRecord
from bot.render import SECONDS, escape, local_time, plural, row

CSV_COLUMNS = (
    "time",
    "who",
    "origin",
    "channel",
    "action",
    "targets",
    "decision",
    "rule",
    "approver",
    "result",
    "detail",
    "seconds",
    "request_ids",
    "id",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def audit_line(r: AuditRecord, tz: dt.tzinfo) -> str:
    """One change (its newest record) on one line, in the viewer's zone."""
    who = escape(r.origin) if r.origin else f"<@{r.who}>"  # a schedule's change is not "by <@U…>"
    if len(r.targets) == 1:
        what = f"{r.what} {r.targets[0]}"
    elif r.targets:
        what = f"{r.what} on {plural(len(r.targets), 'target')}"
    else:
        what = r.what
    outcome = f"→ {r.result or r.decision}"
    if r.approver:
        outcome += f" (approved by <@{r.approver}>)"
    return row(
        local_time(r.time, tz, SECONDS),
        who,
        what,
        outcome,
        f"[{escape(r.rule)}]" if r.rule else "",
        f"({escape(r.detail)})" if r.detail else "",
    )


def iso_utc(when: float) -> str:
    """`2026-05-01T10:00:00.123Z`."""
    stamp = dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def csv_row(r: AuditRecord) -> list[str]:
    cells = [
        r.who,
        r.origin,
        r.channel,
        r.what,
        " ".join(r.targets),
        r.decision,
        r.rule,
        r.approver,
        r.result,
        r.detail,
    ]
    seconds = "" if r.seconds is None else f"{r.seconds:.3f}"
    return [iso_utc(r.time), *(_cell(c) for c in cells), seconds, _cell(" ".join(r.request_ids)), _cell(r.id)]


def csv_text(found: Iterable[AuditRecord]) -> str:
    """A header line and one row per record (RFC 4180 quoting, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_row(r) for r in found)
    return out.getvalue()


def span_text(first: int, last: int, total: int, capped: bool) -> str:
    """`21–40 of 137` (`137+` when the scan stopped before the end of the trail)."""
    return f"{first}–{last} of {total}{'+' if capped else ''}"
