"""The access part of the policy: roles (who, what, where, on which instances, how many) and the
approval rules. Validated at start; `bot.authz` decides with them."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.errors import UserError
from bot.selectors import Selector, parse_selector

_PERMISSION = re.compile(r"^(\*|[a-z][a-z_]*(\.([a-z0-9][a-z0-9_-]*|\*))*)$")
_GROUP = re.compile(r"^S[A-Z0-9_]{2,}$")
APPROVE = "approve"  # lets a user approve someone else's request

# Permissions the interface names for capabilities still to come (Cloud Assistant runs, schedules,
# runbooks): a policy may grant them ahead of time without being refused as unknown.


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_permission(p: str) -> str:
    if not _PERMISSION.match(p):
        raise ValueError(f"{p!r} is not a permission (examples: 'ecs.stop', 'ecs.*', 'incident.ack', '*')")
    return p


def _check_selector(text: str) -> str:
    """A scope or an approval rule's selector: the `/ecs list` grammar, without `status:` (a state is
    not a boundary of who may act)."""
    try:
        selector = parse_selector(text)
    except UserError as exc:
        raise ValueError(f"{text!r} is not a selector: {exc.message}") from None
    if selector.status is not None:
        raise ValueError(f"{text!r}: `status:` cannot bound a scope or a rule (it changes as instances run)")
    if selector.is_empty and selector.region is None:
        raise ValueError(f"{text!r} is not a selector (e.g. 'tag:env=dev')")
    return text


class Role(_Section):
    """Who (`members`, members of Slack user `groups`), may do what (`permissions`), where (`channels`,
    empty = every channel), on which instances (`scopes`: selectors, empty = every instance), and how
    many at once (`max_instances`: permission → cap, beside the global caps)."""

    members: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    max_instances: dict[str, int] = Field(default_factory=dict)

    @field_validator("permissions")
    @classmethod
    def _perm(cls, perms: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_permission(p) for p in perms)

    @field_validator("groups")
    @classmethod
    def _groups(cls, groups: tuple[str, ...]) -> tuple[str, ...]:
        for g in groups:
            if not _GROUP.match(g):
                raise ValueError(f"{g!r} is not a Slack user group id (they look like 'S0614TZR7')")
        return groups

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, scopes: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_selector(s) for s in scopes)

    @field_validator("max_instances")
    @classmethod
    def _caps(cls, caps: dict[str, int]) -> dict[str, int]:
        for p, cap in caps.items():
            _check_permission(p)
            if cap < 1:
                raise ValueError(f"{p}: a cap must be at least 1")
        return caps

    @cached_property
    def scope_selectors(self) -> tuple[Selector, ...]:
        return tuple(parse_selector(s) for s in self.scopes)

    def cap_for(self, permission: str) -> int | None:
        caps = [cap for p, cap in self.max_instances.items() if permission_matches((p,), permission)]
        return min(caps) if caps else None


class ApprovalRule(_Section):
    """The two-person rule: a change whose permission matches `actions` and that touches an instance
    matching `selector` (or at least `min_instances` of them; both given: both must hold) waits for a
    second person holding `approve` (of a role in `approvers`, when given)."""

    selector: str | None = None
    actions: tuple[str, ...] = ("*",)
    min_instances: int | None = Field(default=None, ge=1)
    channel: str | None = None  # None: the requester's channel
    ttl_seconds: int = Field(default=1800, ge=60, le=7 * 86400)
    approvers: tuple[str, ...] = ()  # role names; empty: anyone holding `approve`

    @field_validator("selector")
    @classmethod
    def _sel(cls, text: str | None) -> str | None:
        return None if text is None else _check_selector(text)

    @field_validator("actions")
    @classmethod
    def _actions(cls, actions: tuple[str, ...]) -> tuple[str, ...]:
        if not actions:
            raise ValueError("name at least one action (e.g. ecs.stop), or leave `actions` out for all")
        return tuple(_check_permission(p) for p in actions)

    @cached_property
    def parsed_selector(self) -> Selector | None:
        return parse_selector(self.selector) if self.selector else None

    def applies(self, permission: str, targets: Sequence[Any]) -> bool:
        if not permission_matches(self.actions, permission):
            return False
        if self.min_instances is not None and len(targets) < self.min_instances:
            return False
        sel = self.parsed_selector
        return sel is None or any(sel.matches(t) for t in targets)

    def describe(self) -> str:
        parts = []
        if self.selector:
            parts.append(f"`{self.selector}`")
        if self.min_instances:
            parts.append(f"{self.min_instances}+ instances")
        return " and ".join(parts) or "every change of " + ", ".join(self.actions)


def permission_matches(granted: set[str] | tuple[str, ...], permission: str) -> bool:
    return any(g == "*" or g == permission or fnmatch.fnmatchcase(permission, g) for g in granted)


def unknown_permission(pattern: str, known: Iterable[str]) -> str | None:
    """None when `pattern` grants a permission the bot knows (or is `*`); else why not, with the
    nearest known name."""
    names = sorted(set(known))
    if pattern == "*" or any(
        fnmatch.fnmatchcase(k, pattern) or fnmatch.fnmatchcase(pattern, k) for k in names
    ):
        return None
    close = difflib.get_close_matches(pattern, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{pattern!r} is not a permission this bot knows{hint}"
