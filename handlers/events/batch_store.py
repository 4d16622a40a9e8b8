"""The ECS-events consumer's view of the store: batched claims, and each event's effects committed
together with its confirmation, so one worker can handle thousands of events a second.

Keys and semantics are exactly those of `dedupe.Deduper` (namespace:key → "pending:<token>" / "done"),
so the two interoperate. A batch costs a handful of round trips whatever its size: one `claim_many`, one
`commit_many` in which, per event, the claim is checked to be still ours, the event's effects applied
and the event marked done — all or nothing, so an effect (say, an outbox entry) exists if and only if
the event is confirmed: a crash can neither lose nor repeat it.

Effects are the store's typed operations (bot/store/ops.py). Outboxes are FIFOs kept in sorted sets:
member "<seq:015d>|payload", score seq, the sequence shared by every outbox (`keys.OUTBOX_SEQ`); see `fifo_*`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bot.store import DONE, PENDING, ClaimResult, Guard, Op, Set, Store, Transaction, ZAddSequenced
from dedupe import Deduper
from handlers.events.keys import OUTBOX_SEQ


@dataclass
class Commit:
    """Apply `ops` and confirm `key` — only if the claim `token` still holds (key None: unconditional)."""

    key: str | None
    token: str | None
    ops: list[Op] = field(default_factory=list)


class EventStore:
    def __init__(self, store: Store, namespace: str, claim_ttl: float, done_ttl: float = 7 * 86400):
        self.store = store
        self.namespace = namespace
        self.deduper = Deduper(store, namespace, pending_ttl=claim_ttl, done_ttl=done_ttl)
        self.claim_ttl = claim_ttl
        self.done_ttl = done_ttl

    def full_key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    # claims -----------------------------------------------------------------------------------------
    def claim_many(self, keys: Sequence[str]) -> dict[str, ClaimResult]:
        by_full = {self.full_key(k): k for k in keys}
        return {by_full[f]: r for f, r in self.store.claim_many(list(by_full), self.claim_ttl).items()}

    def release_many(self, claims: Iterable[tuple[str, str]]) -> None:
        for key, token in claims:
            self.deduper.release(key, token)

    # effects + confirm -------------------------------------------------------------------------------
    def commit(self, commits: Sequence[Commit]) -> list[bool]:
        """True per commit whose effects were applied (and key confirmed); False: the claim was lost."""
        transactions = []
        for c in commits:
            if c.key is None:
                transactions.append(Transaction(c.ops))
                continue
            full = self.full_key(c.key)
            transactions.append(
                Transaction(
                    [*c.ops, Set(full, DONE, self.done_ttl)], [Guard(full, PENDING + (c.token or ""))]
                )
            )
        return self.store.commit_many(transactions)

    # reads ------------------------------------------------------------------------------------------
    def hget_many(self, key: str, fields: Sequence[str]) -> list[str | None]:
        return self.store.hget_many(key, fields)

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return self.store.get_many(keys)


# Outboxes: FIFOs on sorted sets -----------------------------------------------------------------------


def fifo_push_op(key: str, payload: str) -> ZAddSequenced:
    """Append `payload` to the FIFO `key` (as part of a commit)."""
    return ZAddSequenced(key, payload, OUTBOX_SEQ)


def fifo_peek(store: Store, key: str, limit: int) -> list[tuple[int, str]]:
    """The oldest `limit` entries as (seq, payload)."""
    out = []
    for member in store.zrange_by_score(key, float("-inf"), float("inf"), limit=limit):
        seq, _, payload = member.partition("|")
        out.append((int(seq), payload))
    return out


def fifo_drop_through(store: Store, key: str, seq: int) -> None:
    """Remove every entry up to and including `seq`."""
    store.zremove_below(key, seq + 0.5)
