"""Typed write operations and guards for `Store.commit` / `Store.commit_many`.

A transaction is a list of guards and a list of operations: when every guard holds, every operation is
applied, together; when one guard fails, nothing is (Redis: one Lua script; SQLite: one transaction).
Guards are checked before the first write, so a failing guard writes nothing. All values are strings;
TTLs are seconds. (An operation the backend itself refuses half-way, e.g. a hash operation on a string
key, raises: SQLite rolls the whole call back; a Redis script keeps the writes made before it.)

    store.commit(
        [ListPush("log", entry, max_len=100), Set("claim:e1", "done", ttl=86400)],
        guards=[Guard("claim:e1", "pending:abc")],
    )

`wire()` is an operation's compact form for the Redis script (bot/store/lua.py): its command name,
its key, then its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass


def _ttl_ms(ttl: float | None) -> int:
    return max(1, int(ttl * 1000)) if ttl else 0


@dataclass(frozen=True, slots=True)
class Guard:
    """Holds when the string at `key` equals `value` (`None`: when the key is absent or expired)."""

    key: str
    value: str | None


@dataclass(frozen=True, slots=True)
class Set:
    key: str
    value: str
    ttl: float | None = None

    def wire(self) -> list:
        return ["SET", self.key, self.value, _ttl_ms(self.ttl)]


@dataclass(frozen=True, slots=True)
class Delete:
    """Like Redis DEL: whatever type the key holds."""

    key: str

    def wire(self) -> list:
        return ["DEL", self.key]


@dataclass(frozen=True, slots=True)
class Incr:
    """Add to a counter; the TTL is set when the counter is created."""

    key: str
    amount: int = 1
    ttl: float | None = None

    def wire(self) -> list:
        return ["INCR", self.key, int(self.amount), _ttl_ms(self.ttl)]


@dataclass(frozen=True, slots=True)
class Expire:
    """Let the key expire in `ttl` seconds. On SQLite only string keys carry a TTL: hashes, lists and
    sorted sets there are kept until deleted or trimmed (retention jobs trim them)."""

    key: str
    ttl: float

    def wire(self) -> list:
        return ["EXPIRE", self.key, _ttl_ms(self.ttl)]


@dataclass(frozen=True, slots=True)
class HSet:
    key: str
    field: str
    value: str

    def wire(self) -> list:
        return ["HSET", self.key, self.field, self.value]


@dataclass(frozen=True, slots=True)
class HDel:
    key: str
    field: str

    def wire(self) -> list:
        return ["HDEL", self.key, self.field]


@dataclass(frozen=True, slots=True)
class HSetIfNewer:
    """Set the field to "<at>|<value>" unless it holds a newer one (its text before "|" is a larger
    number): the newest write wins whatever the order they arrive in."""

    key: str
    field: str
    at: float
    value: str

    def wire(self) -> list:
        return ["HSETNEWER", self.key, self.field, repr(float(self.at)), self.value]


@dataclass(frozen=True, slots=True)
class ListPush:
    """Prepend (newest first), keeping at most `max_len` items."""

    key: str
    value: str
    max_len: int | None = None

    def wire(self) -> list:
        return ["LPUSH", self.key, self.value, int(self.max_len or 0)]


@dataclass(frozen=True, slots=True)
class ZAdd:
    key: str
    member: str
    score: float

    def wire(self) -> list:
        return ["ZADD", self.key, self.member, repr(float(self.score))]


@dataclass(frozen=True, slots=True)
class ZRemBelow:
    """Remove the members scored below `score`."""

    key: str
    score: float

    def wire(self) -> list:
        return ["ZREMBELOW", self.key, repr(float(self.score))]


@dataclass(frozen=True, slots=True)
class ZAddSequenced:
    """Append to a sorted set in order: `n = INCR counter`, then ZADD `key` with score n and member
    "<n as 15 digits>|<value>" (so equal values stay distinct and members sort like their scores)."""

    key: str
    value: str
    counter: str

    def wire(self) -> list:
        return ["ZADDSEQ", self.key, self.value, self.counter]


Op = Set | Delete | Incr | Expire | HSet | HDel | HSetIfNewer | ListPush | ZAdd | ZRemBelow | ZAddSequenced
OPS: tuple[type, ...] = (
    Set,
    Delete,
    Incr,
    Expire,
    HSet,
    HDel,
    HSetIfNewer,
    ListPush,
    ZAdd,
    ZRemBelow,
    ZAddSequenced,
)


@dataclass(frozen=True, slots=True)
class Transaction:
    """One all-or-nothing unit of `Store.commit_many`."""

    ops: tuple[Op, ...] | list[Op]
    guards: tuple[Guard, ...] | list[Guard] = ()


def check(tx: Transaction) -> None:
    """Refuse what is not a known operation or guard before anything is sent or written."""
    for op in tx.ops:
        if not isinstance(op, OPS):
            raise TypeError(f"not a store operation: {op!r}")
    for guard in tx.guards:
        if not isinstance(guard, Guard):
            raise TypeError(f"not a guard: {guard!r}")
