"""The one place that decides allow / deny, and the audit trail every decision leaves in the store.

A decision about a change is made once its targets are known: `authorize(actor, permission, targets)`
gets the resolved targets (ids and tags), so rules that look at them (role scopes, caps per role,
approval rules) are added here without changing any call site. `precheck` is the cheap question asked
before a lookup ("does the caller hold this permission at all?"); it audits only a refusal.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from bot import records
from bot.errors import Forbidden
from bot.policy import DEFAULT_READ_PERMISSIONS, Policy, permission_matches
from bot.store import Store

AUDIT_KEY = "audit"  # changes (and every refusal of one)
READS_KEY = "audit:reads"  # reading: help, list, status, history, audit …
AUDIT_MAX = 20_000


@dataclass(frozen=True)
class Actor:
    user_id: str
    channel_id: str | None = None
    user_name: str | None = None


@dataclass(frozen=True)
class Target:
    """What a change acts on, as authorization sees it: an id and the tags it had when resolved."""

    id: str
    tags: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)


def as_targets(targets: Iterable[Target | str | object]) -> list[Target]:
    """Targets from ids, `Target`s, or anything with `instance_id` and `tags` (e.g. InstanceInfo)."""
    out = []
    for t in targets:
        if isinstance(t, Target):
            out.append(t)
        elif isinstance(t, str):
            out.append(Target(t))
        else:
            out.append(Target(str(t.instance_id), dict(getattr(t, "tags", None) or {})))
    return out


@dataclass
class AuditRecord:
    who: str
    channel: str | None
    what: str
    targets: list[str]
    decision: str  # "allow" | "deny"
    result: str | None = None
    detail: str | None = None
    time: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    origin: str | None = None  # None: the Slack user `who`; else e.g. "schedule office-hours"


class Authorizer:
    def __init__(
        self,
        policy: Policy,
        admins: tuple[str, ...],
        store: Store,
        reads: Iterable[str] = DEFAULT_READ_PERMISSIONS,
    ):
        self.policy = policy
        self.admins = frozenset(admins)
        self.store = store
        self.reads = frozenset(reads)  # the permissions whose records are kept apart from changes

    def allowed(self, actor: Actor, permission: str) -> bool:
        if actor.user_id in self.admins:
            return True
        return permission_matches(self.policy.permissions_of(actor.user_id, actor.channel_id), permission)

    def precheck(self, actor: Actor, permission: str, detail: str | None = None) -> None:
        """Refuse (audited) a caller who holds `permission` for no target at all; allow silently
        otherwise: the audited decision follows once the targets are known."""
        if not self.allowed(actor, permission):
            self.authorize(actor, permission, (), detail)

    def authorize(
        self,
        actor: Actor,
        permission: str,
        targets: Iterable[Target | str | object] = (),
        detail: str | None = None,
    ) -> AuditRecord:
        """Allow (returning the audit record) or raise Forbidden; both outcomes are audited."""
        resolved = as_targets(targets)
        ok = self.allowed(actor, permission)
        record = AuditRecord(
            who=actor.user_id,
            channel=actor.channel_id,
            what=permission,
            targets=[t.id for t in resolved[:200]],
            decision="allow" if ok else "deny",
            detail=detail,
        )
        self.append(record)
        if not ok:
            raise Forbidden(
                f"You are not allowed to run `{permission}`. Ask an admin to give you a role that includes it."
            )
        return record

    def record_result(self, record: AuditRecord, result: str, detail: str | None = None) -> None:
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
            )
        )

    def append(self, record: AuditRecord) -> None:
        key = READS_KEY if record.what in self.reads else AUDIT_KEY
        self.store.list_push(key, records.dump(record), max_len=AUDIT_MAX)

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
