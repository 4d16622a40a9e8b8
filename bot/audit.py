"""The audit trail: one append-only record per decision about a change (and per refusal), kept in the
store apart from reading (help, list, status …), newest first.

A decision's outcome is a second record with the same `id` (`record_result`): nothing is rewritten.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bot import records
from bot.store import Store

AUDIT_KEY = "audit"  # changes (and every refusal of one)
READS_KEY = "audit:reads"  # reading: help, list, status, history, audit …
AUDIT_MAX = 20_000


@dataclass
class AuditRecord:
    who: str
    channel: str | None
    what: str
    targets: list[str]
    decision: str  # "allow" | "deny" | "pending" (waiting for a second person)
    result: str | None = None
    detail: str | None = None
    time: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    origin: str | None = None  # None: the Slack user `who`; else e.g. "schedule office-hours"
    rule: str | None = None  # what decided it: "role devs (scope tag:env=dev)", "admin", "approvals[0]" …
    approver: str | None = None  # the second person who approved the change
    request_ids: list[str] = field(default_factory=list)  # the provider's request ids of the change
    seconds: float | None = None  # how long the change took, on its result record


class AuditLog:
    """Append and query the trail. `reads` are the permissions whose records are kept apart."""

    def __init__(self, store: Store, reads: Iterable[str] = ()):
        self.store = store
        self.reads = frozenset(reads)

    def append(self, record: AuditRecord) -> None:
        key = READS_KEY if record.what in self.reads else AUDIT_KEY
        self.store.list_push(key, records.dump(record), max_len=AUDIT_MAX)

    def record_result(
        self,
        record: AuditRecord,
        result: str,
        detail: str | None = None,
        approver: str | None = None,
        request_ids: Iterable[str] = (),
        seconds: float | None = None,
    ) -> None:
        self.append(
            AuditRecord(
                who=record.who,
                channel=record.channel,
                what=record.what,
                targets=record.targets,
                decision=record.decision,
                result=result,
                detail=detail,
                id=record.id,
                origin=record.origin,
                rule=record.rule,
                approver=approver or record.approver,
                request_ids=list(request_ids)[:50],
                seconds=seconds,
            )
        )

    def recent(
        self,
        limit: int = 20,
        reads: bool = False,
        where: Callable[[AuditRecord], bool] | None = None,
        scan: int = AUDIT_MAX,
    ) -> list[AuditRecord]:
        """The newest `limit` records (changes; with `reads`, reading too) that `where` accepts, from
        at most `scan` of the newest records of each list."""
        keys = (AUDIT_KEY, READS_KEY) if reads else (AUDIT_KEY,)
        found: list[AuditRecord] = []
        for key in keys:
            page, start = 500, 0
            kept = 0
            while start < scan and kept < limit:
                raws = self.store.list_range(key, start, min(start + page, scan) - 1)
                for raw in raws:
                    record = records.load_or_none(AuditRecord, raw)
                    if record is not None and (where is None or where(record)):
                        found.append(record)
                        kept += 1
                        if kept >= limit:
                            break
                if len(raws) < page:
                    break
                start += page
        found.sort(key=lambda r: r.time, reverse=True)
        return found[:limit]
