"""Deliver the outboxes to Slack at Slack's pace: one call per channel per `1 / channel_rate_per_second`.

Per channel and slot: an urgent notice (interruption, auto-restart, quarantine, scheduled maintenance)
goes out on its own; otherwise a lone notice is posted as one message, and a backlog (a burst) opens a
digest — one message edited in place while the burst lasts, with the complete list attached as a file
when it ends. One worker delivers at a time (a lease in the store); another takes over within
`LEASE_TTL` seconds if it dies. Everything it needs to resume (outboxes, the open digest, its lines)
is in the store; a notice leaves its outbox only after Slack accepted it.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace

from bot import blocks, records
from bot.errors import StoreUnavailable, UpstreamError
from bot.registry import Capability
from bot.render import plural
from bot.store import HSet, ZAdd
from handlers.events import keys
from handlers.events.batch_store import Commit, EventStore, fifo_drop_through, fifo_peek, fifo_push_op
from handlers.events.digest import DigestView, outbox_payload, payload_entry, read_line, split_payload
from handlers.events.render import Notice
from handlers.events.stored import DigestState

capability = Capability("handlers.events.notifier")

log = logging.getLogger(__name__)

LEASE_TTL = 10.0
DIGEST_MIN_BACKLOG = 3  # a lone notice or two are posted as they are; more waiting → digest
MOVE_LIMIT = 2000  # notices moved into a digest per slot
MAX_DIGEST_EVENTS = 5000  # a digest this large is closed and the next one opened
MAX_DIGEST_SECONDS = 900
PERMANENT = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "invalid_channel", "restricted_action"}
)


def rerouted(notice: Notice, channel: str, code: str) -> Notice:
    """A notice for a channel that cannot take messages, as sent to the default channel instead: it says
    where it was meant to go and why it is here (its blocks stay within Slack's 50)."""
    note = f"(meant for <#{channel}>, which answered `{code}`)"
    body = [*blocks.limit_blocks(notice.blocks)[: blocks.MAX_BLOCKS - 1], blocks.context(note)]
    return replace(notice, text=f"{notice.text} {note}", blocks=body if notice.blocks else [])


class Notifier:
    def __init__(self, services):
        self.services = services
        self.store = services.store
        policy = services.policy.events
        self.interval = 1.0 / policy.channel_rate_per_second
        self.quiet = policy.digest_quiet_seconds
        self.inline = policy.digest_inline_lines
        self.default_channel = policy.default_channel or services.settings.SLACK_NOTIFY_CHANNEL or None
        self.batch = EventStore(self.store, keys.DEDUPE_NAMESPACE, claim_ttl=60.0)
        self.token = uuid.uuid4().hex
        self.leader = False
        self._renewed = 0.0
        self.next_at: dict[str, float] = {}
        self.failures: dict[str, int] = {}
        self.digests: dict[str, DigestView] = {}
        self.m_calls = services.metrics.counter(
            "chatops_events_slack_calls_total", "Slack calls of the ECS-event notifier", ["kind", "outcome"]
        )

    # the loop --------------------------------------------------------------------------------------
    def run(self, stop) -> None:
        delay = 0.5
        while not stop.is_set():
            try:
                busy = self.tick()
                delay = 0.5
            except StoreUnavailable as exc:
                log.warning("notifier: store unavailable", extra={"error": str(exc)})
                self.leader = False
                stop.wait(delay)
                delay = min(delay * 2, 10.0)
                continue
            stop.wait(0.05 if busy else 0.2)
        self.resign()

    def tick(self) -> bool:
        if not self._lead():
            return False
        busy = False
        for channel in sorted(self.store.hgetall(keys.CHANNELS)):
            now = time.time()
            if now < self.next_at.get(channel, 0.0):
                continue
            try:
                busy |= self._slot(channel, now)
            except StoreUnavailable:
                raise
            except Exception:  # noqa: BLE001 - one channel's trouble must not stop the others
                log.exception("notifier: channel slot failed", extra={"channel": channel})
                self._backoff(channel)
        return busy

    # leadership ------------------------------------------------------------------------------------
    def _lead(self) -> bool:
        now = time.monotonic()
        if self.leader and now - self._renewed < 1.0:
            return True
        if self.leader:
            ok = self.store.compare_and_set(keys.NOTIFIER_LEASE, self.token, self.token, LEASE_TTL)
        else:
            ok = self.store.set_nx(keys.NOTIFIER_LEASE, self.token, LEASE_TTL)
            if ok:
                self._take_over()
        self.leader, self._renewed = ok, now
        return ok

    def resign(self) -> None:
        if self.leader:
            try:
                self.store.compare_and_delete(keys.NOTIFIER_LEASE, self.token)
            except StoreUnavailable:
                pass
        self.leader = False

    def _take_over(self) -> None:
        """Resume where the previous leader stopped: open digests come back from the store."""
        self.digests.clear()
        start = time.time() + self.interval  # the previous leader may have just used this slot
        for channel in self.store.hgetall(keys.CHANNELS):
            self.next_at[channel] = start
            state = records.load_or_none(DigestState, self.store.get(keys.channel_state(channel)))
            if state is None:
                continue
            view = DigestView(state.id, state.started, inline=self.inline, ts=state.ts)
            for seq, raw in fifo_peek(
                self.store, keys.digest_lines(channel, view.digest_id), MAX_DIGEST_EVENTS + MOVE_LIMIT
            ):
                view.add(seq, raw, state.last if state.last is not None else state.started)
            self.digests[channel] = view
        log.info("notifier: leading", extra={"open_digests": len(self.digests)})

    # one slot of one channel -----------------------------------------------------------------------
    def _slot(self, channel: str, now: float) -> bool:
        urgent = fifo_peek(self.store, keys.urgent(channel), 1)
        if urgent:
            seq, payload = urgent[0]
            if self._post(channel, split_payload(payload)[1], "urgent"):
                fifo_drop_through(self.store, keys.urgent(channel), seq)
            return True
        digest = self.digests.get(channel)
        if digest is not None:
            return self._digest_slot(channel, digest, now)
        items = fifo_peek(self.store, keys.outbox(channel), MOVE_LIMIT)
        if not items:
            return False
        if len(items) < DIGEST_MIN_BACKLOG:
            seq, payload = items[0]
            if self._post(channel, split_payload(payload)[1], "single"):
                fifo_drop_through(self.store, keys.outbox(channel), seq)
            return True
        digest = DigestView(
            f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}", now, inline=self.inline
        )
        self.digests[channel] = digest
        self._save(channel, digest)
        self._move(channel, digest, items, now)
        self._publish(channel, digest, final=False)
        return True

    def _digest_slot(self, channel: str, digest: DigestView, now: float) -> bool:
        if digest.ts is None:  # opened but never posted (a crash in between): post it now
            self._publish(channel, digest, final=False)
            return True
        full = digest.count >= MAX_DIGEST_EVENTS or now - digest.started >= MAX_DIGEST_SECONDS
        items = [] if full else fifo_peek(self.store, keys.outbox(channel), MOVE_LIMIT)
        if items:
            self._move(channel, digest, items, now)
            self._publish(channel, digest, final=False)
            return True
        if not full and now - digest.last_item_at < self.quiet:
            return False
        self._finish(channel, digest)
        return True

    # digest steps ----------------------------------------------------------------------------------
    def _move(self, channel: str, digest: DigestView, items: list[tuple[int, str]], now: float) -> None:
        lines_key = keys.digest_lines(channel, digest.digest_id)
        compact = [(seq, payload_entry(payload)) for seq, payload in items]
        ops = [ZAdd(lines_key, f"{seq:015d}|{e}", seq) for seq, e in compact]
        self.batch.commit([Commit(None, None, ops)])  # first into the digest (idempotent) …
        fifo_drop_through(self.store, keys.outbox(channel), items[-1][0])  # … then out of the outbox
        for seq, e in compact:
            digest.add(seq, e, now)
        self._save(channel, digest)

    def _publish(self, channel: str, digest: DigestView, final: bool) -> None:
        tz = self.services.timezone
        text, body = digest.render(tz, final, channel)
        try:
            if digest.ts is None:
                digest.ts = self.services.slack.post(channel, text, body).ts
                self._save(channel, digest)
                self.m_calls.labels("digest-post", "ok").inc()
            else:
                self.services.slack.update(channel, digest.ts, text, body)
                self.m_calls.labels("digest-update", "ok").inc()
        except UpstreamError as exc:
            if exc.code == "message_not_found":  # someone deleted the digest: start a new message
                digest.ts = None
                self._save(channel, digest)
            self._failed(channel, exc, "digest")
            return
        self._spent(channel)

    def _finish(self, channel: str, digest: DigestView) -> None:
        self._publish(channel, digest, final=True)
        if self.failures.get(channel):
            return
        lines_key = keys.digest_lines(channel, digest.digest_id)
        if digest.needs_file():
            entries = [raw for _, raw in fifo_peek(self.store, lines_key, MAX_DIGEST_EVENTS + MOVE_LIMIT)]
            try:
                self.services.slack.upload_text(
                    channel,
                    digest.file_name(channel),
                    digest.file_text(entries),
                    title=f"ECS events: {plural(digest.count, 'event')}",
                    comment=f"Every ECS event of the burst (digest {digest.digest_id}), oldest first.",
                )
                self.m_calls.labels("digest-file", "ok").inc()
            except UpstreamError as exc:
                self._failed(channel, exc, "file")
                return
            self.next_at[channel] = time.time() + 2 * self.interval
        self.store.delete(keys.channel_state(channel))
        self.store.zremove_below(lines_key, float("inf"))
        self.digests.pop(channel, None)

    def _save(self, channel: str, digest: DigestView) -> None:
        state = DigestState(
            id=digest.digest_id, started=digest.started, ts=digest.ts, last=digest.last_item_at
        )
        self.store.set(keys.channel_state(channel), records.dump(state))

    # single messages and failures ------------------------------------------------------------------
    def _post(self, channel: str, notice: Notice, kind: str) -> bool:
        try:
            self.services.slack.post(channel, notice.text or "(ECS event)", notice.blocks or None)
        except UpstreamError as exc:
            self._failed(channel, exc, kind)
            return False
        self.m_calls.labels(kind, "ok").inc()
        self._spent(channel)
        return True

    def _spent(self, channel: str) -> None:
        self.failures.pop(channel, None)
        self.next_at[channel] = time.time() + self.interval

    def _backoff(self, channel: str) -> None:
        n = self.failures.get(channel, 0) + 1
        self.failures[channel] = n
        self.next_at[channel] = time.time() + min(60.0, self.interval * 2**n)

    def _failed(self, channel: str, exc: UpstreamError, kind: str) -> None:
        self.m_calls.labels(kind, exc.code or "error").inc()
        log.warning("notifier: Slack refused", extra={"channel": channel, "error": str(exc), "kind": kind})
        if exc.code in PERMANENT and self.default_channel and channel != self.default_channel:
            self._reroute(channel, exc.code or "error")
            return
        self._backoff(channel)

    def _reroute(self, channel: str, code: str) -> None:
        """The channel cannot take messages: send what waits for it to the default channel instead."""
        for box in (keys.urgent(channel), keys.outbox(channel)):
            items = fifo_peek(self.store, box, MAX_DIGEST_EVENTS)
            if not items:
                continue
            ops = []
            for _, payload in items:
                notice = rerouted(split_payload(payload)[1], channel, code)
                target = (
                    keys.urgent(self.default_channel)
                    if box.startswith("events:urgent")
                    else keys.outbox(self.default_channel)
                )
                ops.append(fifo_push_op(target, outbox_payload(notice)))
            ops.append(HSet(keys.CHANNELS, self.default_channel, "1"))
            self.batch.commit([Commit(None, None, ops)])
            fifo_drop_through(self.store, box, items[-1][0])
        digest = self.digests.pop(channel, None)
        if digest is not None:
            lines_key = keys.digest_lines(channel, digest.digest_id)
            entries = fifo_peek(self.store, lines_key, MAX_DIGEST_EVENTS + MOVE_LIMIT)
            ops = []
            for _, raw in entries:
                e = read_line(raw)
                line = Notice(kind="state", text=e.p, line=e.l, plain=e.p, state=e.w, instance_id=e.i)
                notice = rerouted(line, channel, code)
                ops.append(fifo_push_op(keys.outbox(self.default_channel), outbox_payload(notice)))
            if ops:
                self.batch.commit([Commit(None, None, ops)])
            self.store.delete(keys.channel_state(channel))
            self.store.zremove_below(lines_key, float("inf"))
        self.store.hdel(keys.CHANNELS, channel)


@capability.background(
    "events-notifier", enabled=lambda s: bool(s.settings.MNS_ENDPOINT and s.settings.MNS_QUEUE)
)
def deliver(services, stop) -> None:
    Notifier(services).run(stop)
