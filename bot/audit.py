"""The audit trail: one append-only record per decision about a change (and per refusal), kept in the
store apart from reading (help, list, status …), newest first.

A decision's outcome is a second record with the same `id` (`record_result`): nothing is rewritten.
Every record is also one JSON log line on the `chatops.audit` logger (message "audit", the record's
fields as keys, `trail` naming its list), for a SIEM. Records older than the retention are dropped
from the oldest end (`trim`); each list also keeps at most `AUDIT_MAX` records.

    log.scan(reads=True)              every record, newest first, both lists merged (bounded)
    latest_per_change(records)        the newest record of each id: one line per change
    of_matching_changes(records, f)   every record of the changes whose newest record `f` accepts
"""

from __future__ import annotations

import heapq
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter

from bot import records
from bot.clock import Clock
from bot.logs import AUDIT_LOGGER
from bot.store import Store

AUDIT_KEY = "audit"  # changes (and every refusal of one)
READS_KEY = "audit:reads"  # reading: help, list, status, history, audit …
AUDIT_MAX = 20_000
PAGE = 500  # records per store read

log = logging.getLogger(AUDIT_LOGGER)


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

    def __init__(self, store: Store, reads: Iterable[str] = (), clock: Clock | None = None):
        self.store = store
        self.reads = frozenset(reads)
        self.clock = clock or store.clock  # stamps result records

    def append(self, record: AuditRecord) -> None:
        key = READS_KEY if record.what in self.reads else AUDIT_KEY
        self.store.list_push(key, records.dump(record), max_len=AUDIT_MAX)
        trail = "reads" if key == READS_KEY else "changes"
        log.info("audit", extra={"trail": trail, **records.to_dict(record)})

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
                time=self.clock.time(),
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

    def scan(self, reads: bool = False, limit: int = AUDIT_MAX) -> Scan:
        """Every record (changes; with `reads`, reading too) newest first, from at most `limit` of the
        newest records of each list."""
        return Scan(self.store, (AUDIT_KEY, READS_KEY) if reads else (AUDIT_KEY,), limit)

    def trim(self, before: float) -> int:
        """Retention: drop the records older than `before` (epoch seconds) from the oldest end of both
        lists; returns how many went. A list is cut at its oldest record that is kept, so a record out
        of time order (another replica's clock) keeps the older ones behind it until it is old too."""
        return sum(self._trim(key, before) for key in (AUDIT_KEY, READS_KEY))

    def _trim(self, key: str, before: float) -> int:
        old = 0  # how many of the oldest records are older than `before`
        while True:  # one page newer than the `old` oldest ones per round: bounded by the list's length
            raws = self.store.list_range(key, -(old + PAGE), -(old + 1))
            for raw in reversed(raws):  # oldest first
                record = records.load_or_none(AuditRecord, raw)  # unreadable: dropped with the old ones
                if record is not None and record.time >= before:
                    break
                old += 1
            else:
                if len(raws) == PAGE:
                    continue
            break
        if old:
            # Negative indexes: records pushed meanwhile (at the newest end) are kept. Only a push that
            # meets AUDIT_MAX and drops the oldest record itself could make this drop one record more.
            self.store.list_trim(key, 0, -(old + 1))
        return old


class Scan:
    """Records newest first, the lists' pages merged by time; iterate once. `capped` is true once a
    list was left unread past `limit` records."""

    def __init__(self, store: Store, keys: Iterable[str], limit: int = AUDIT_MAX):
        self.store = store
        self.keys = tuple(keys)
        self.limit = limit
        self.capped = False

    def __iter__(self) -> Iterator[AuditRecord]:
        return heapq.merge(*(self._read(key) for key in self.keys), key=attrgetter("time"), reverse=True)

    def _read(self, key: str) -> Iterator[AuditRecord]:
        start, previous = 0, frozenset()
        while start < self.limit:
            stop = min(start + PAGE, self.limit) - 1
            raws = self.store.list_range(key, start, stop)
            for raw in raws:
                if raw in previous:  # pushed meanwhile: the page moved, this one was read already
                    continue
                record = records.load_or_none(AuditRecord, raw)
                if record is not None:
                    yield record
            if len(raws) <= stop - start:
                return
            start, previous = stop + 1, frozenset(raws)
        if self.store.list_range(key, start, start):
            self.capped = True


def latest_per_change(found: Iterable[AuditRecord]) -> Iterator[AuditRecord]:
    """From records newest first, the first (newest) of each id: a change's result record stands for
    its decision record."""
    seen: set[str] = set()
    for record in found:
        if record.id not in seen:
            seen.add(record.id)
            yield record


def of_matching_changes(
    found: Iterable[AuditRecord], where: Callable[[AuditRecord], bool]
) -> Iterator[AuditRecord]:
    """From records newest first, every record of each id whose newest record `where` accepts."""
    verdict: dict[str, bool] = {}
    for record in found:
        ok = verdict.get(record.id)
        if ok is None:
            ok = verdict[record.id] = where(record)
        if ok:
            yield record
