"""One batch of MNS messages: parse → claim → enrich → act → (effects + confirm, atomically) → what to delete.

A message is deleted only when its event is durably handled (or was handled before, or is quarantined);
anything that fails is released and left on the queue, so MNS redelivers it after the visibility timeout.
Slack is never called here: notices go to per-channel outboxes that the notifier drains at Slack's pace.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from bot import records
from bot.adapters.mns import QueueMessage
from bot.ecs_model import InstanceInfo
from bot.intents import caused_by, intents_for
from bot.store import Delete, Expire, HSet, HSetIfNewer, ListPush, Op, Set, ZAdd, ZRemBelow
from dedupe import ClaimStatus
from handlers.events import keys
from handlers.events.autorestart import handle_stop
from handlers.events.batch_store import Commit, EventStore, fifo_push_op
from handlers.events.digest import outbox_payload
from handlers.events.envelope import EcsEvent, EnvelopeError, parse_event
from handlers.events.instances import InstanceDirectory, remembered_key
from handlers.events.interruption import remove_from_load_balancers
from handlers.events.render import (
    Notice,
    interruption_notice,
    other_notice,
    quarantine_notice,
    restart_notice,
    state_notice,
    system_notice,
)
from handlers.events.routing import channels_for
from handlers.events.stored import HistoryEntry, MaintenanceMarker, Quarantined

log = logging.getLogger(__name__)

QUARANTINE_KEEP = 1000
EXCERPT = 8192
ACTIVE_MAINTENANCE = ("Scheduled", "Executing", "Inquiring")


@dataclass
class BatchResult:
    delete: list[str] = field(default_factory=list)  # receipt handles
    handled: int = 0
    duplicates: int = 0
    quarantined: int = 0
    left: int = 0  # left on the queue (busy elsewhere, or failed: redelivered later)
    busy: list[tuple[str, str]] = field(default_factory=list)  # (receipt handle, key) claimed elsewhere


class Processor:
    def __init__(self, services):
        self.services = services
        policy = services.policy.events
        self.policy = policy
        self.store = EventStore(services.store, keys.DEDUPE_NAMESPACE, claim_ttl=float(policy.claim_seconds))
        self.directory = InstanceDirectory(services, float(policy.tag_cache_seconds))
        self.default_channel = policy.default_channel or services.settings.SLACK_NOTIFY_CHANNEL or None
        self.ops_channel = policy.ops_channel or self.default_channel
        self.retention = policy.history_days * 86400
        self.region = services.settings.ALIBABA_CLOUD_REGION_ID
        self.tz = services.timezone
        metrics = services.metrics
        self.m_events = metrics.counter(
            "chatops_mns_events_total", "ECS events from MNS", ["kind", "outcome"]
        )
        self.m_lag = metrics.histogram(
            "chatops_mns_event_lag_seconds", "Event time to handling", buckets=(1, 5, 15, 60, 300, 1800)
        )

    # the batch -------------------------------------------------------------------------------------
    def process(self, messages: list[QueueMessage]) -> BatchResult:
        result = BatchResult()
        parsed: list[tuple[QueueMessage, EcsEvent]] = []
        broken: list[tuple[QueueMessage, str]] = []
        for m in messages:
            try:
                parsed.append((m, parse_event(m.body)))
            except EnvelopeError as exc:
                broken.append((m, exc.reason))
        claim_keys = [ev.event_id for _, ev in parsed] + [f"q:{m.message_id}" for m, _ in broken]
        claims = self.store.claim_many(claim_keys)

        commits: list[tuple[Commit, list[QueueMessage], str]] = []
        acting: list[tuple[QueueMessage, EcsEvent, str]] = []
        for m, reason in broken:
            claim = claims[f"q:{m.message_id}"]
            if claim.status is ClaimStatus.CLAIMED:
                commit = Commit(f"q:{m.message_id}", claim.token, self._quarantine_ops(m, reason, None))
                commits.append((commit, [m], "quarantine"))
            elif claim.status is ClaimStatus.DONE:
                result.delete.append(m.receipt_handle)
            else:
                result.left += 1
        groups: dict[str, list[tuple[QueueMessage, EcsEvent]]] = {}
        for m, ev in parsed:  # the same event may arrive twice in one batch
            groups.setdefault(ev.event_id, []).append((m, ev))
        twins: dict[str, list[QueueMessage]] = {}
        for event_id, copies in groups.items():
            m, ev = copies[0]
            claim = claims[event_id]
            if claim.status is ClaimStatus.DONE:
                result.delete.extend(c.receipt_handle for c, _ in copies)
                result.duplicates += len(copies)
                self.m_events.labels(ev.kind, "duplicate").inc(len(copies))
            elif claim.status is ClaimStatus.BUSY:  # another consumer has it right now
                result.left += len(copies)
                result.busy.extend((c.receipt_handle, event_id) for c, _ in copies)
            else:
                twins[event_id] = [c for c, _ in copies[1:]]
                deliveries = max(c.dequeue_count for c, _ in copies)
                if deliveries > self.policy.quarantine_after_deliveries:
                    reason = f"delivered {deliveries} times without being handled"
                    ops = self._quarantine_ops(m, reason, ev)
                    commits.append((Commit(event_id, claim.token, ops), [c for c, _ in copies], "quarantine"))
                else:
                    acting.append((m, ev, claim.token or ""))

        for m, ev, token, ops in self._act(acting, result):
            commits.append((Commit(ev.event_id, token, ops), [m, *twins.get(ev.event_id, [])], ev.kind))

        applied = self.store.commit([c for c, _, _ in commits])
        for (_commit, msgs, kind), ok in zip(commits, applied, strict=True):
            if ok:
                result.delete.extend(m.receipt_handle for m in msgs)
                result.duplicates += len(msgs) - 1
                if kind == "quarantine":
                    result.quarantined += 1
                else:
                    result.handled += 1
                self.m_events.labels(kind, "quarantined" if kind == "quarantine" else "handled").inc()
            else:  # the claim expired and someone else may have acted: leave it to them
                result.left += len(msgs)
        return result

    def settle_busy(self, busy: list[tuple[str, str]], wait: float = 0.5) -> set[str]:
        """Keys (of `busy`) that another consumer confirmed, waiting up to `wait` seconds: a duplicate
        delivery handled concurrently elsewhere can then be deleted now instead of coming back later."""
        pending = {key for _, key in busy}
        done: set[str] = set()
        deadline = time.monotonic() + wait
        while pending:
            for key, state in zip(
                list(pending), self.store.get_many([self.store.full_key(k) for k in pending]), strict=True
            ):
                if state == "done":
                    done.add(key)
                    pending.discard(key)
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        return done

    # acting ----------------------------------------------------------------------------------------
    def _act(self, acting, result: BatchResult):
        if not acting:
            return
        wanted = {ev.instance_id: ev.region for _, ev, _ in acting if ev.instance_id}
        lookup = self.directory.lookup(wanted, self.store.get_many)
        fresh = {f.instance_id: f for f in lookup.fresh}
        last = self._last_states([iid for iid in wanted])
        changed = [ev.instance_id for _, ev, _ in acting if ev.instance_id and ev.is_state_change]
        intents = intents_for(self.store, list(dict.fromkeys(changed))) if changed else {}
        # interruptions first (minutes count), then in event-time order
        acting.sort(key=lambda t: (not t[1].is_interruption, _epoch(t[1], t[0])))
        for m, ev, token in acting:
            facts = lookup.facts.get(ev.instance_id) if ev.instance_id else None
            if ev.instance_id and facts is None and lookup.error and m.dequeue_count < 2:
                # ECS could not tell us the tags (routing, auto-restart): try again on redelivery
                self.store.release_many([(ev.event_id, token)])
                result.left += 1
                continue
            try:
                ops = self._effects(m, ev, facts, last, intents)
            except Exception:  # noqa: BLE001 - one bad event must not stop the batch; it is redelivered
                log.exception("event handling failed", extra={"event": ev.event_id, "name": ev.name})
                self.store.release_many([(ev.event_id, token)])
                self.m_events.labels(ev.kind, "failed").inc()
                result.left += 1
                continue
            if ev.instance_id in fresh:
                f = fresh.pop(ev.instance_id)
                ops.append(Set(remembered_key(f.instance_id), records.dump(f), self.retention))
            yield m, ev, token, ops

    def _last_states(self, ids: list[str]) -> dict[str, tuple[float, str]]:
        out = {}
        for iid, raw in zip(ids, self.store.hget_many(keys.STATE, ids), strict=True):
            if raw and "|" in raw:
                t, _, state = raw.partition("|")
                try:
                    out[iid] = (float(t), state)
                except ValueError:
                    continue
        return out

    def _effects(
        self, m: QueueMessage, ev: EcsEvent, facts: InstanceInfo | None, last, intents=None
    ) -> list[Op]:
        tz = self.tz
        at = _epoch(ev, m)
        self.m_lag.observe(max(0.0, time.time() - at))
        ops: list[Op] = []
        notices: list[Notice] = []
        iid = ev.instance_id
        old = None
        extra: dict = {}
        if ev.is_state_change:
            by = caused_by((intents or {}).get(iid or ""), ev.state, at)
            if by:
                extra["by"] = by
            prev = last.get(iid) if iid else None
            old = prev[1] if prev and prev[0] <= at else None
            if iid and (prev is None or prev[0] <= at):
                last[iid] = (at, ev.state)
                ops.append(HSetIfNewer(keys.STATE, iid, round(at, 3), ev.state or ""))
            restart = None
            if ev.state == "Stopped" and iid:
                decision, restarted = handle_stop(self.services, ev, facts)
                if decision.action != "ignore":
                    restart = (restarted, decision.reason)
                    extra["restart"] = ("started: " if restarted else "skipped: ") + decision.reason
            separate = restart is not None and bool(self.services.policy.auto_restart.channel)
            notices.append(state_notice(ev, facts, old, tz, None if separate else restart))
            if separate and restart is not None:
                notices.append(restart_notice(ev, facts, restart[0], restart[1], tz))
        elif ev.is_interruption:
            ok, outcome = True, "no action (not a delete)"
            if (ev.action or "").lower() == "delete":
                ok, outcome = remove_from_load_balancers(self.services, ev, facts, self.region)
                if iid:
                    ops.append(Set(keys.interrupted(iid), ev.event_id, 3600))
            extra["outcome"] = outcome
            notices.append(interruption_notice(ev, facts, outcome, ok, tz))
        elif ev.is_system_event:
            ops.extend(self._maintenance_ops(ev))
            notices.append(system_notice(ev, facts, tz))
        else:
            notices.append(other_notice(ev, facts, tz))
        if iid:
            ops.extend(self._history_ops(ev, facts, at, old, extra))
        tags = facts.tags if facts else {}
        channels = channels_for(ev, tags, self.services.policy.routes, self.default_channel)
        for notice in notices:
            targets = channels
            if notice.kind == "restart" and self.services.policy.auto_restart.channel:
                targets = (self.services.policy.auto_restart.channel,)
            ops.extend(self._notify_ops(notice, targets))
        self._trigger_runbooks(ev, facts)
        return ops

    def _trigger_runbooks(self, ev: EcsEvent, facts: InstanceInfo | None) -> None:
        """Runbooks with a matching `trigger.event` (their run ids derive from the event id: a
        redelivered event starts nothing twice)."""
        if not getattr(self.services.policy, "runbooks", None):
            return
        from handlers.runbooks.triggers import on_ecs_event

        on_ecs_event(self.services, ev.name, ev.event_id, facts, ev.system_event_id)

    def _history_ops(self, ev: EcsEvent, facts, at: float, old: str | None, extra: dict) -> list[Op]:
        iid = ev.instance_id or ""
        name = (facts.name if facts else None) or ev.instance_name
        entry = HistoryEntry(
            t=round(at, 3),
            e=ev.name,
            id=ev.event_id,
            s=ev.state,
            o=old,
            n=name,
            st=ev.event_status or None,
            nb=ev.not_before.timestamp() if ev.not_before else None,
            **extra,
        )
        cutoff = time.time() - self.retention
        score = round(at, 3)
        ops: list[Op] = [
            ZAdd(keys.history(iid), records.dump(entry), score),
            ZRemBelow(keys.history(iid), round(cutoff, 3)),
            Expire(keys.history(iid), self.retention),
            ZAdd(keys.HISTORY_INDEX, iid, score),
        ]
        if name and name != iid:
            ops.append(ZAdd(keys.name_index(name), iid, score))
            ops.append(Expire(keys.name_index(name), self.retention))
        return ops

    def _maintenance_ops(self, ev: EcsEvent) -> list[Op]:
        if not ev.instance_id:
            return []
        parts = ev.name.split(":")
        marker = records.dump(
            MaintenanceMarker(event=parts[1] if len(parts) > 1 else ev.name, status=ev.event_status)
        )
        if ev.event_status in ACTIVE_MAINTENANCE:
            until = (ev.not_before.timestamp() if ev.not_before else time.time()) + 6 * 3600
            ttl = max(3600.0, until - time.time())
            return [Set(keys.maintenance(ev.instance_id), marker, round(ttl))]
        if ev.event_status == "Executed":  # the stop it caused may still be on its way
            return [Set(keys.maintenance(ev.instance_id), marker, 3600)]
        if ev.event_status in ("Canceled", "Avoided", "Failed"):
            return [Delete(keys.maintenance(ev.instance_id))]
        return []

    def _notify_ops(self, notice: Notice, channels) -> list[Op]:
        payload = outbox_payload(notice)
        ops: list[Op] = []
        for channel in channels:
            box = keys.urgent(channel) if notice.urgent else keys.outbox(channel)
            ops.append(fifo_push_op(box, payload))
            ops.append(HSet(keys.CHANNELS, channel, "1"))
        return ops

    def _quarantine_ops(self, m: QueueMessage, reason: str, ev: EcsEvent | None) -> list[Op]:
        record = Quarantined(
            message_id=m.message_id,
            dequeue_count=m.dequeue_count,
            reason=reason,
            event_id=ev.event_id if ev else None,
            at=time.time(),
            body=m.body[:EXCERPT],
        )
        log.warning("MNS message quarantined", extra={"message_id": m.message_id, "reason": reason})
        ops: list[Op] = [ListPush(keys.QUARANTINE, records.dump(record), QUARANTINE_KEEP)]
        if self.ops_channel:
            notice = quarantine_notice(m.message_id, m.dequeue_count, reason, m.body[:600])
            ops.extend(self._notify_ops(notice, (self.ops_channel,)))
        return ops


def _epoch(ev: EcsEvent, m: QueueMessage) -> float:
    return ev.time.timestamp() if ev.time else m.enqueue_time_ms / 1000.0
