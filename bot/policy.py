"""The YAML policy file (`CHATOPS_CONFIG`): roles, caps, routes, schedules, calendars.

Validated at start; an error names the field (`roles.operators.permissions[0]: ...`). Every section has a
default so an empty file (or none at all) is a valid, conservative policy: anyone may read, changing
anything needs a role, and bootstrap admins (`CHATOPS_ADMINS`) hold every permission.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.errors import ConfigError

_PERMISSION = re.compile(r"^(\*|[a-z]+(\.([a-z_]+|\*))?)$")

# What anyone may do when the policy says nothing else.
DEFAULT_READ_PERMISSIONS = (
    "ecs.help",
    "ecs.list",
    "ecs.status",
    "ecs.history",
    "ecs.audit",
    "incident.help",
    "incident.list",
    "oncall",
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Role(_Section):
    members: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()  # empty = every channel

    @field_validator("permissions")
    @classmethod
    def _perm(cls, perms: tuple[str, ...]) -> tuple[str, ...]:
        for p in perms:
            if not _PERMISSION.match(p):
                raise ValueError(
                    f"{p!r} is not a permission (examples: 'ecs.stop', 'ecs.*', 'incident.ack', '*')"
                )
        return perms


class Confirmation(_Section):
    ttl_seconds: int = Field(default=600, ge=30, le=86400)
    others_may_confirm: bool = False  # True: anyone holding the permission may press Confirm


class EcsPolicy(_Section):
    max_instances: dict[str, int] = Field(
        default_factory=lambda: {"start": 500, "stop": 500, "reboot": 200, "run": 200}
    )
    api_rate_per_second: float = Field(default=20.0, gt=0)
    batch_concurrency: int = Field(default=4, ge=1, le=32)
    wait_timeout_seconds: int = Field(default=600, ge=10)


class Route(_Section):
    channel: str
    events: tuple[str, ...] = ("*",)
    states: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    regions: tuple[str, ...] = ()


class Calendar(_Section):
    url: str
    service_id: str | None = None
    channel: str | None = None
    lead_minutes: int = Field(default=0, ge=0, le=1440)
    resolve_at_end: bool = False


class Policy(_Section):
    timezone: str | None = None
    roles: dict[str, Role] = Field(default_factory=dict)
    read_permissions: tuple[str, ...] = DEFAULT_READ_PERMISSIONS
    confirmation: Confirmation = Confirmation()
    ecs: EcsPolicy = EcsPolicy()
    routes: tuple[Route, ...] = ()
    calendars: tuple[Calendar, ...] = ()
    # Sections owned by individual capabilities; validated by their modules when they load.
    extensions: dict[str, Any] = Field(default_factory=dict)

    def permissions_of(self, user_id: str, channel_id: str | None = None) -> set[str]:
        granted = set(self.read_permissions)
        for role in self.roles.values():
            if user_id in role.members and (not role.channels or channel_id in role.channels):
                granted.update(role.permissions)
        return granted

    def roles_of(self, user_id: str) -> list[str]:
        return sorted(name for name, role in self.roles.items() if user_id in role.members)


def permission_matches(granted: set[str] | tuple[str, ...], permission: str) -> bool:
    return any(g == "*" or g == permission or fnmatch.fnmatchcase(permission, g) for g in granted)


def load_policy(path: Path | str | None) -> Policy:
    """Parse and validate the policy file. None → the default policy."""
    if path is None:
        return Policy()
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text()) if p.exists() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid policy file {p}: {str(exc).splitlines()[0]}") from None
    if not p.exists():
        raise ConfigError(f"invalid setting CHATOPS_CONFIG: {p} does not exist")
    if raw is None:
        return Policy()
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid policy file {p}: the top level must be a mapping")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"]).lstrip(".")
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"invalid policy file {p}: {loc or 'top level'}: {msg}") from None
