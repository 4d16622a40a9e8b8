"""The one place that decides allow / deny, and the audit trail every decision leaves in the store."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field

from bot.errors import Forbidden
from bot.policy import Policy, permission_matches
from bot.store import Store

AUDIT_KEY = "audit"
AUDIT_MAX = 20_000


@dataclass(frozen=True)
class Actor:
    user_id: str
    channel_id: str | None = None
    user_name: str | None = None


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


class Authorizer:
    def __init__(self, policy: Policy, admins: tuple[str, ...], store: Store):
        self.policy = policy
        self.admins = frozenset(admins)
        self.store = store

    def allowed(self, actor: Actor, permission: str) -> bool:
        if actor.user_id in self.admins:
            return True
        return permission_matches(self.policy.permissions_of(actor.user_id, actor.channel_id), permission)

    def authorize(
        self,
        actor: Actor,
        permission: str,
        targets: list[str] | tuple[str, ...] = (),
        detail: str | None = None,
    ) -> AuditRecord:
        """Allow (returning the audit record) or raise Forbidden; both outcomes are audited."""
        ok = self.allowed(actor, permission)
        record = AuditRecord(
            who=actor.user_id,
            channel=actor.channel_id,
            what=permission,
            targets=list(targets)[:200],
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
            )
        )

    def append(self, record: AuditRecord) -> None:
        self.store.list_push(AUDIT_KEY, json.dumps(asdict(record)), max_len=AUDIT_MAX)

    def recent(self, limit: int = 20) -> list[AuditRecord]:
        return [AuditRecord(**json.loads(raw)) for raw in self.store.list_range(AUDIT_KEY, 0, limit - 1)]
