"""The YAML policy file (`CHATOPS_CONFIG`): roles, caps, routes, schedules, calendars.

Capabilities may contribute sections of their own and default read permissions (bot.registry:
`capability.policy_section(...)`, `capability.read_permissions(...)`), so a new capability does not edit
this module. Validated at start; an error names the field (`roles.operators.permissions[0]: ...`). Every section has a
default so an empty file (or none at all) is a valid, conservative policy: anyone may read, changing
anything needs a role, and bootstrap admins (`CHATOPS_ADMINS`) hold every permission.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from bot.access_policy import (
    APPROVE,
    ApprovalRule,
    Role,
    permission_matches,
    unknown_permission,
)
from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.registry import Registry

ANNOUNCED_PERMISSIONS = (
    "ecs.run",
    "ecs.run.template.*",
    "ecs.runbook.*",
    "ecs.schedule.*",
    "schedule.override",
)

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


class Confirmation(_Section):
    ttl_seconds: int = Field(default=600, ge=30, le=86400)
    others_may_confirm: bool = False  # True: anyone holding the permission may press Confirm


class EcsPolicy(_Section):
    max_instances: dict[str, int] = Field(
        default_factory=lambda: {"start": 500, "stop": 500, "reboot": 200, "run": 200}
    )
    api_rate_per_second: float = Field(default=20.0, gt=0)
    batch_concurrency: int = Field(default=10, ge=1, le=32)
    wait_timeout_seconds: int = Field(default=600, ge=10)
    key_tags: tuple[str, ...] = ("env",)  # tags whose values a preview counts ("env: 12 prod, 3 dev")


class Route(_Section):
    """ECS event → channel. Every matching route gets the event; none matching → the default channel.
    `events` are glob patterns on the event name; `states` the new state of `Instance:StateChange`
    events; `tags` must all equal the instance's tags; `regions` the event's region."""

    channel: str
    events: tuple[str, ...] = ("*",)
    states: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    regions: tuple[str, ...] = ()


class EventsPolicy(_Section):
    """The MNS consumer of ECS events (CloudMonitor → MNS → `chatops worker`)."""

    default_channel: str | None = None  # None → SLACK_NOTIFY_CHANNEL
    ops_channel: str | None = None  # quarantine reports; None → default channel
    quarantine_after_deliveries: int = Field(default=5, ge=2, le=1000)
    claim_seconds: int = Field(default=60, ge=1, le=3600)  # how long a crashed consumer blocks an event
    wait_seconds: int = Field(default=10, ge=0, le=30)  # MNS long polling
    batch_size: int = Field(default=16, ge=1, le=16)
    # receive/process threads per worker (each with its own MNS connection)
    consumers: int = Field(default=2, ge=1, le=8)
    history_days: int = Field(default=30, ge=1, le=400)
    tag_cache_seconds: int = Field(default=300, ge=0, le=86400)
    channel_rate_per_second: float = Field(default=0.9, gt=0, le=1.0)  # Slack: ~1 message/s/channel
    digest_quiet_seconds: float = Field(default=3.0, ge=0.2, le=600)  # a burst ends after this silence
    digest_inline_lines: int = Field(default=20, ge=1, le=40)
    max_event_age_seconds: int = Field(default=900, ge=10)  # older Stopped events never auto-restart


class AutoRestartPolicy(_Section):
    """Start instances that stopped unexpectedly: never ones this bot (a person, a schedule) stopped,
    never during expected maintenance, at most `max_per_hour` per instance."""

    enabled: bool = True
    tags: dict[str, str] = Field(default_factory=lambda: {"auto-restart": "true"})
    max_per_hour: int = Field(default=3, ge=0, le=60)
    channel: str | None = None  # None → the event's routes


class VServerGroupRef(_Section):
    id: str
    region: str | None = None  # None → ALIBABA_CLOUD_REGION_ID
    tags: dict[str, str] = Field(default_factory=dict)  # instances with all these tags …
    instance_ids: tuple[str, ...] = ()  # … or these ids; neither → any backend of the group


class SlbPolicy(_Section):
    """On a preemptible-instance interruption, take the instance out of these vserver groups."""

    remove_on_interruption: bool = True
    vserver_groups: tuple[VServerGroupRef, ...] = ()


class Calendar(_Section):
    url: str
    service_id: str | None = None
    channel: str | None = None
    lead_minutes: int = Field(default=0, ge=0, le=1440)
    resolve_at_end: bool = False


class PagerDutyPolicy(_Section):
    """Where incident messages go, and defaults for calendars listed only in CALENDAR_ICS_URLS."""

    channels: dict[str, str] = Field(default_factory=dict)  # PagerDuty service id → Slack channel
    default_channel: str | None = None  # None → SLACK_NOTIFY_CHANNEL
    calendar_lead_minutes: int = Field(default=0, ge=0, le=1440)
    calendar_resolve_at_end: bool = False
    # how long a worker that stopped mid-effect holds an event's Slack effect before another takes it
    effect_claim_seconds: int = Field(default=120, ge=5, le=3600)


class Policy(_Section):
    timezone: str | None = None
    roles: dict[str, Role] = Field(default_factory=dict)
    read_permissions: tuple[str, ...] = DEFAULT_READ_PERMISSIONS
    confirmation: Confirmation = Confirmation()
    ecs: EcsPolicy = EcsPolicy()
    routes: tuple[Route, ...] = ()
    events: EventsPolicy = EventsPolicy()
    auto_restart: AutoRestartPolicy = AutoRestartPolicy()
    slb: SlbPolicy = SlbPolicy()
    calendars: tuple[Calendar, ...] = ()
    pagerduty: PagerDutyPolicy = PagerDutyPolicy()
    approvals: tuple[ApprovalRule, ...] = ()

    @model_validator(mode="after")
    def _approvers_exist(self) -> Policy:
        for i, rule in enumerate(self.approvals):
            for j, name in enumerate(rule.approvers):
                role = self.roles.get(name)
                if role is None:
                    raise ValueError(f"approvals[{i}].approvers[{j}]: there is no role {name!r}")
                if not permission_matches(role.permissions, APPROVE):
                    raise ValueError(f"approvals[{i}].approvers[{j}]: role {name!r} does not hold 'approve'")
            if not rule.approvers and not any(
                permission_matches(r.permissions, APPROVE) and (r.members or r.groups)
                for r in self.roles.values()
            ):
                raise ValueError(
                    f"approvals[{i}]: no role with members holds 'approve', so nobody could approve "
                    "what this rule holds back (give a role 'approve', or name `approvers`)"
                )
        return self

    def permissions_of(self, user_id: str, channel_id: str | None = None) -> set[str]:
        granted = set(self.read_permissions)
        for role in self.roles.values():
            if user_id in role.members and (not role.channels or channel_id in role.channels):
                granted.update(role.permissions)
        return granted

    def roles_of(self, user_id: str) -> list[str]:
        return sorted(name for name, role in self.roles.items() if user_id in role.members)


def check_known_permissions(policy: Policy, known: Iterable[str]) -> None:
    """Stop start-up on a permission no command, button or capability checks (a typo grants nothing)."""
    known = set(known)
    places: list[tuple[str, str]] = [
        (f"read_permissions[{i}]", p) for i, p in enumerate(policy.read_permissions)
    ]
    for name, role in policy.roles.items():
        places += [(f"roles.{name}.permissions[{i}]", p) for i, p in enumerate(role.permissions)]
        places += [(f"roles.{name}.max_instances.{p}", p) for p in role.max_instances]
    for i, rule in enumerate(policy.approvals):
        places += [(f"approvals[{i}].actions[{j}]", p) for j, p in enumerate(rule.actions)]
    for where, pattern in places:
        why = unknown_permission(pattern, known)
        if why:
            raise ConfigError(f"invalid policy file: {where}: {why}")


def policy_model(registry: Registry | None = None) -> type[Policy]:
    """The policy's model: the core sections here plus those the registry's capabilities contribute."""
    sections = registry.policy_sections if registry is not None else {}
    if not sections:
        return Policy
    fields: dict[str, Any] = {
        s.name: (s.model, Field(default_factory=s.default_factory)) for s in sections.values()
    }
    clash = sorted(set(fields) & set(Policy.model_fields))
    if clash:
        raise ConfigError(f"policy section {clash[0]!r} is contributed twice (core and a capability)")
    return create_model("Policy", __base__=Policy, **fields)


def _with_read_defaults(policy: Policy, raw: dict, registry: Registry | None) -> Policy:
    if "read_permissions" in raw or registry is None or not registry.read_permissions:
        return policy
    merged = tuple(dict.fromkeys((*DEFAULT_READ_PERMISSIONS, *registry.read_permissions)))
    return policy.model_copy(update={"read_permissions": merged})


def load_policy(path: Path | str | None, registry: Registry | None = None) -> Policy:
    """Parse and validate the policy file (with the sections and default read permissions the
    registry's capabilities contribute). None → the default policy."""
    model = policy_model(registry)
    if path is None:
        return _with_read_defaults(model(), {}, registry)
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text()) if p.exists() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid policy file {p}: {str(exc).splitlines()[0]}") from None
    if not p.exists():
        raise ConfigError(f"invalid setting CHATOPS_CONFIG: {p} does not exist")
    if raw is None:
        return _with_read_defaults(model(), {}, registry)
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid policy file {p}: the top level must be a mapping")
    try:
        policy = _with_read_defaults(
            model.model_validate(raw, context={"policy_dir": str(p.resolve().parent)}), raw, registry
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"]).lstrip(".")
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"invalid policy file {p}: {loc or 'top level'}: {msg}") from None
    if registry is not None:
        for section in registry.policy_sections.values():
            if section.check is not None:
                try:
                    section.check(policy)
                except ValueError as exc:
                    raise ConfigError(f"invalid policy file {p}: {exc}") from None
        try:
            check_known_permissions(
                policy,
                registry.known_permissions() | set(ANNOUNCED_PERMISSIONS) | set(DEFAULT_READ_PERMISSIONS),
            )
        except ConfigError as exc:
            raise ConfigError(
                str(exc).replace("invalid policy file:", f"invalid policy file {p}:", 1)
            ) from None
    return policy
