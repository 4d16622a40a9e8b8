"""The one place that decides allow / deny, and the audit trail every decision leaves in the store.

A decision about a change is made once its targets are known: `authorize(actor, permission, targets)`
gets the resolved targets (ids and tags), so rules that look at them (role scopes, caps per role,
approval rules) are added here without changing any call site. `precheck` is the cheap question asked
before a lookup ("does the caller hold this permission at all?"); it audits only a refusal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.audit import AUDIT_KEY, AUDIT_MAX, READS_KEY, AuditLog, AuditRecord
from bot.errors import Forbidden
from bot.policy import DEFAULT_READ_PERMISSIONS, Policy, permission_matches
from bot.store import Store

__all__ = ["AUDIT_KEY", "READS_KEY", "Actor", "AuditRecord", "Authorizer", "Target", "as_targets"]


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
        self.log = AuditLog(store, self.reads)

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

    # the audit trail (bot.audit) ------------------------------------------------------------------
    def append(self, record: AuditRecord) -> None:
        self.log.append(record)

    def record_result(self, record: AuditRecord, result: str, detail: str | None = None, **more) -> None:
        self.log.record_result(record, result, detail, **more)

    def recent(
        self, limit: int = 20, reads: bool = False, where=None, scan: int = AUDIT_MAX
    ) -> list[AuditRecord]:
        return self.log.recent(limit, reads=reads, where=where, scan=scan)
