"""The one place that decides allow / deny, and the audit trail every decision leaves in the store.

A decision about a change is made once its targets are known: `authorize(actor, permission, targets)`
gets the resolved targets (ids, names, tags, regions) and applies, in this order:

    bootstrap admin (CHATOPS_ADMINS)      every permission, everywhere
    read permissions                      open to everyone, never scoped
    roles                                 the caller's (members, Slack user groups; `channels` limit
                                          where a role applies), those granting the permission
    scopes                                every target must match a scope of a granting role; a role
                                          without scopes covers every instance (roles add up)
    caps                                  `max_instances` of the granting roles (the most generous)

A refusal is whole (never narrowed), names the rule and the instances outside, and is audited.
`precheck` is the cheap question asked before a lookup ("does the caller hold this permission for
anything at all?"); it audits only a refusal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bot.access_policy import Role, permission_matches
from bot.audit import AUDIT_KEY, AUDIT_MAX, READS_KEY, AuditLog, AuditRecord
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import Forbidden
from bot.policy import DEFAULT_READ_PERMISSIONS, Policy
from bot.selectors import Selector
from bot.store import Store

__all__ = ["AUDIT_KEY", "READS_KEY", "Actor", "AuditRecord", "Authorizer", "Decision", "Target", "as_targets"]

SHOWN_OUTSIDE = 10  # instances a refusal names before "and N more"


@dataclass(frozen=True)
class Actor:
    user_id: str
    channel_id: str | None = None
    user_name: str | None = None


@dataclass(frozen=True)
class Target:
    """What a change acts on, as authorization sees it: an id, and the name, tags and region it had
    when resolved (what scopes and approval rules look at)."""

    id: str
    tags: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    name: str = field(default="", compare=False)
    region: str = field(default="", compare=False)

    def label(self) -> str:
        return f"{self.name} ({self.id})" if self.name and self.name != self.id else self.id


def as_targets(targets: Iterable[Target | str | object]) -> list[Target]:
    """Targets from ids, `Target`s, or anything with `instance_id` and `tags` (e.g. InstanceInfo)."""
    out = []
    for t in targets:
        if isinstance(t, Target):
            out.append(t)
        elif isinstance(t, str):
            out.append(Target(t))
        else:
            out.append(
                Target(
                    str(t.instance_id),
                    dict(getattr(t, "tags", None) or {}),
                    str(getattr(t, "name", "") or ""),
                    str(getattr(t, "region", "") or ""),
                )
            )
    return out


class GroupDirectory(Protocol):
    """Slack user groups (bot.groups: cached `usergroups.users.list`)."""

    def contains(self, group_id: str, user_id: str) -> bool: ...


@dataclass(frozen=True)
class Grant:
    """One role of the caller that grants the permission."""

    role: str
    scopes: tuple[Selector, ...]  # empty: every instance
    cap: int | None

    def covers(self, target: Target) -> bool:
        return not self.scopes or any(s.matches(target) for s in self.scopes)

    def where(self) -> str:
        return " or ".join(f"`{s.text()}`" for s in self.scopes) or "every instance"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str  # what decided: "bootstrap admin", "role devs (scope tag:env=dev)", "no role grants ecs.stop" …
    reason: str = ""  # the refusal as the caller reads it
    outside: tuple[str, ...] = ()  # targets outside every scope, by id


class Authorizer:
    def __init__(
        self,
        policy: Policy,
        admins: tuple[str, ...],
        store: Store,
        reads: Iterable[str] = DEFAULT_READ_PERMISSIONS,
        groups: GroupDirectory | None = None,
        clock: Clock | None = None,
    ):
        self.policy = policy
        self.admins = frozenset(admins)
        self.store = store
        self.reads = frozenset(reads)  # the permissions whose records are kept apart from changes
        self.groups = groups
        self.clock = clock or SYSTEM_CLOCK
        self.log = AuditLog(store, self.reads, self.clock)

    # who is in which role ---------------------------------------------------------------------------
    def _member(self, role: Role, user_id: str) -> bool:
        if user_id in role.members:
            return True
        return self.groups is not None and any(self.groups.contains(g, user_id) for g in role.groups)

    def roles_of(self, actor: Actor, anywhere: bool = False) -> list[str]:
        """The caller's roles (in the caller's channel, unless `anywhere`)."""
        return [
            name
            for name, role in sorted(self.policy.roles.items())
            if (anywhere or not role.channels or actor.channel_id in role.channels)
            and self._member(role, actor.user_id)
        ]

    def grants(self, actor: Actor, permission: str) -> list[Grant]:
        roles = self.policy.roles
        return [
            Grant(name, roles[name].scope_selectors, roles[name].cap_for(permission))
            for name in self.roles_of(actor)
            if permission_matches(roles[name].permissions, permission)
        ]

    def is_admin(self, actor: Actor) -> bool:
        return actor.user_id in self.admins

    def is_read(self, permission: str) -> bool:
        return permission_matches(self.policy.read_permissions, permission)

    def scopes_of(self, actor: Actor, permission: str) -> list[str] | None:
        """Where the caller holds the permission: None for everywhere, else the scopes (empty: nowhere)."""
        if self.is_admin(actor) or self.is_read(permission):
            return None
        grants = self.grants(actor, permission)
        if any(not g.scopes for g in grants):
            return None
        return list(dict.fromkeys(s.text() for g in grants for s in g.scopes))

    # the decision -----------------------------------------------------------------------------------
    def decide(
        self, actor: Actor, permission: str, targets: Iterable[Target | str | object] = ()
    ) -> Decision:
        resolved = as_targets(targets)
        if self.is_admin(actor):
            return Decision(True, "bootstrap admin")
        if self.is_read(permission):
            return Decision(True, "open to everyone")
        grants = self.grants(actor, permission)
        if not grants:
            return self._no_role(actor, permission)
        unscoped = [g for g in grants if not g.scopes]
        if unscoped or not resolved:
            covering = unscoped or grants
        else:
            outside = [t for t in resolved if not any(g.covers(t) for g in grants)]
            if outside:
                return self._outside(permission, grants, resolved, outside)
            covering = [g for g in grants if any(g.covers(t) for t in resolved)]
        caps = [g.cap for g in covering]
        if resolved and None not in caps and len(resolved) > max(caps):
            best = max(covering, key=lambda g: g.cap or 0)
            return Decision(
                False,
                f"max_instances of role {best.role}",
                f"Refused: your role {best.role} allows `{permission}` on at most {best.cap} instances at once, "
                f"and this is {len(resolved)}. Narrow the selector. Nothing was changed.",
            )
        first = covering[0]
        rule = f"role {first.role}" + (f" (scope {first.where()})" if first.scopes else "")
        return Decision(True, rule.replace("`", ""))

    def _no_role(self, actor: Actor, permission: str) -> Decision:
        elsewhere = [
            name
            for name in self.roles_of(actor, anywhere=True)
            if permission_matches(self.policy.roles[name].permissions, permission)
        ]
        if elsewhere:
            channels = ", ".join(f"<#{c}>" for c in self.policy.roles[elsewhere[0]].channels)
            return Decision(
                False,
                f"role {elsewhere[0]} is limited to other channels",
                f"You may run `{permission}` only in {channels} (role {elsewhere[0]}); not in this channel.",
            )
        mine = self.roles_of(actor)
        held = f" Your roles ({', '.join(mine)}) do not include it." if mine else " You have no role."
        return Decision(
            False,
            f"no role grants {permission}",
            f"You are not allowed to run `{permission}`.{held} Ask an admin for a role that includes it.",
        )

    def _outside(
        self, permission: str, grants: list[Grant], resolved: list[Target], outside: list[Target]
    ) -> Decision:
        where = "; ".join(f"{g.where()} (role {g.role})" for g in grants)
        names = ", ".join(t.label() for t in outside[:SHOWN_OUTSIDE])
        more = f" and {len(outside) - SHOWN_OUTSIDE} more" if len(outside) > SHOWN_OUTSIDE else ""
        some = (
            ("it falls" if len(resolved) == 1 else f"all {len(resolved)} targets fall")
            if len(outside) == len(resolved)
            else f"{len(outside)} of the {len(resolved)} targets fall"
        )
        return Decision(
            False,
            "scope of role " + ", ".join(g.role for g in grants),
            f"Refused: you may `{permission}` only instances matching {where}; {some} outside: "
            f"{names}{more}. Nothing was changed.",
            tuple(t.id for t in outside),
        )

    def allowed(self, actor: Actor, permission: str) -> bool:
        """Whether the caller holds the permission for anything at all (help, App Home, prechecks)."""
        return self.decide(actor, permission).allowed

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
        """Allow (returning the audit record) or raise Forbidden with the rule's reason; both audited."""
        resolved = as_targets(targets)
        decision = self.decide(actor, permission, resolved)
        record = AuditRecord(
            who=actor.user_id,
            channel=actor.channel_id,
            what=permission,
            targets=[t.id for t in resolved[:200]],
            decision="allow" if decision.allowed else "deny",
            detail=detail,
            rule=decision.rule,
            time=self.clock.time(),
        )
        self.append(record)
        if not decision.allowed:
            raise Forbidden(decision.reason)
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
