"""One registry per process: every command, button, modal, job, periodic job, route, loop, adapter, answer
builder, plan kind and policy section the bot offers.

A module declares what it offers on a `Capability` with plain decorators; nothing is live until a
process builds a `Registry` and includes it:

    capability = Capability("ecs.power")

    @capability.subcommand("/ecs", "stop", permission="ecs.stop", usage="…", summary="…")
    def stop(req: CommandRequest) -> Reply: ...

    @capability.job("ecs.lookup")
    def lookup(services, kind: str, args: str) -> None: ...

    registry = Registry.discover()          # every capability under bot/ and handlers/
    registry = Registry().include(mine)     # a test's own registry: only what it names

A name registered twice is an error when the registry is built (`DuplicateRegistration`), never a
silent override. `Services` owns the process's registry; the task queue binds its jobs from it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.commands import ActionRequest, CommandRequest, Reply

# A command without sub-commands (e.g. /oncall) registers the name "" as its default.
DEFAULT = ""
# The packages whose modules declare capabilities.
PACKAGES = ("bot.adapters", "bot.pipeline", "handlers")


class DuplicateRegistration(ConfigError):
    """Two capabilities registered the same name."""


@dataclass(frozen=True)
class Subcommand:
    command: str
    name: str
    permission: str
    usage: str
    summary: str
    handler: Callable[[CommandRequest], Reply]
    aliases: tuple[str, ...] = ()
    # True: the handler authorizes once it knows the targets (the dispatcher only pre-checks that the
    # caller holds the permission at all, so a read-only user is refused before any lookup).
    authorizes_targets: bool = False


@dataclass(frozen=True)
class ActionSpec:
    """A button. `permission` is checked before the handler runs; PLAN_PERMISSION means the button
    decides a plan and is authorized with that plan's permission and targets (bot.pipeline.gates)."""

    action_id: str
    handler: Callable[[ActionRequest], Reply | None]
    permission: str
    authorizes_targets: bool = False  # as for sub-commands


PLAN_PERMISSION = "<the plan's permission>"
# A menu whose options need different permissions (an overflow menu): the handler authorizes the option
# chosen, with its target; the permissions it checks are registered elsewhere (commands, `permissions`).
CHOSEN_PERMISSION = "<the chosen option's permission>"
HANDLER_AUTHORIZES = frozenset({PLAN_PERMISSION, CHOSEN_PERMISSION})


@dataclass(frozen=True)
class ViewSpec:
    """A modal's submission, by the `callback_id` of its view; `permission` as for a button (the
    handler authorizes with the targets when `authorizes_targets`)."""

    callback_id: str
    handler: Callable[..., Any]
    permission: str
    authorizes_targets: bool = False


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: Callable[..., Any]
    retries: int = 0  # how many times a failed run is tried again
    retry_delay: float = 0.0  # seconds before the first retry; doubled for each further one
    cron: dict[str, str] | None = None  # set for periodic jobs (crontab fields)


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    fn: Callable[..., Any]
    max_body: int = 0  # 0: the global limit


@dataclass(frozen=True)
class LoopSpec:
    name: str
    fn: Callable[..., None]
    enabled: Callable[..., bool]


@dataclass(frozen=True)
class PolicySection:
    name: str
    model: Any  # a pydantic model, or a type pydantic validates (dict[str, Model], str …)
    default_factory: Callable[[], Any]
    check: Callable[[Any], None] | None = None  # fn(policy): raise ValueError("field: why") across sections


@dataclass
class Capability:
    """What one module offers, declared at import; a `Registry` makes it live."""

    name: str
    entries: list[tuple[str, Any, Any]] = field(default_factory=list)  # (table, key, value)

    def _add(self, table: str, key: Any, value: Any) -> Any:
        self.entries.append((table, key, value))
        return value

    def subcommand(
        self,
        command: str,
        name: str,
        *,
        permission: str,
        usage: str,
        summary: str,
        aliases: tuple[str, ...] = (),
        authorizes_targets: bool = False,
    ):
        def register(fn):
            spec = Subcommand(command, name, permission, usage, summary, fn, aliases, authorizes_targets)
            for key in (name, *aliases):
                self._add("commands", (command, key), spec)
            return fn

        return register

    def action(self, action_id: str, *, permission: str, authorizes_targets: bool = False):
        def register(fn):
            self._add("actions", action_id, ActionSpec(action_id, fn, permission, authorizes_targets))
            return fn

        return register

    def view(self, callback_id: str, *, permission: str, authorizes_targets: bool = False):
        """The submission of a modal this capability opens (bot.commands.ViewRequest)."""

        def register(fn):
            self._add("views", callback_id, ViewSpec(callback_id, fn, permission, authorizes_targets))
            return fn

        return register

    def job(self, name: str, retries: int = 0, retry_delay: float = 0.0):
        def register(fn):
            self._add("jobs", name, JobSpec(name, fn, retries, retry_delay))
            return fn

        return register

    def periodic(self, name: str, **cron: str):
        """A job the worker's scheduler enqueues on a crontab (`minute="*/5"`, `hour="9"` …)."""

        def register(fn):
            self._add("jobs", name, JobSpec(name, fn, cron=cron or {"minute": "*"}))
            return fn

        return register

    def route(self, method: str, path: str, max_body: int | None = None):
        """An HTTP endpoint; `max_body` overrides the global body limit (e.g. 256 KB for webhooks)."""

        def register(fn):
            self._add("routes", (method.upper(), path), RouteSpec(method.upper(), path, fn, max_body or 0))
            return fn

        return register

    def background(self, name: str, enabled: Callable[..., bool] = lambda services: True):
        """A long-running loop of `chatops worker`: fn(services, stop_event)."""

        def register(fn):
            self._add("loops", name, LoopSpec(name, fn, enabled))
            return fn

        return register

    def adapter(self, name: str):
        """A vendor adapter's factory: fn(services) -> adapter, built once per process on first use."""

        def register(fn):
            self._add("adapters", name, fn)
            return fn

        return register

    def builder(self, kind: str):
        """An answer builder that may run inline or, past Slack's budget, in a job (handlers.ecs.lookup)."""

        def register(fn):
            self._add("builders", kind, fn)
            return fn

        return register

    def plan_kind(self, kind: Any) -> Any:
        """A kind of change for the pipeline (bot.pipeline.kinds.PlanKind); returns it."""
        return self._add("plan_kinds", kind.name, kind)

    def policy_section(
        self,
        name: str,
        model: Any,
        default_factory: Callable[[], Any] | None = None,
        check: Callable[[Any], None] | None = None,
    ):
        """A section of the policy file this capability owns (a pydantic model, or a type such as
        `dict[str, Model]`); `check(policy)` validates what needs other sections (ValueError naming the
        field stops start-up)."""
        self._add("policy_sections", name, PolicySection(name, model, default_factory or model, check))

    def permissions(self, *permissions: str) -> None:
        """Permissions this capability checks other than through a command or a button (`approve`;
        families such as `ecs.run.template.*`), so the policy may grant them."""
        for permission in permissions:
            self._add("extra_permissions", permission, permission)

    def read_permissions(self, *permissions: str) -> None:
        """Permissions everyone holds unless the policy's `read_permissions` says otherwise."""
        for permission in permissions:
            self._add("read_permissions", permission, permission)


class Registry:
    def __init__(self):
        self.commands: dict[str, dict[str, Subcommand]] = {}
        self.actions: dict[str, ActionSpec] = {}
        self.views: dict[str, ViewSpec] = {}
        self.jobs: dict[str, JobSpec] = {}
        self.routes: dict[tuple[str, str], RouteSpec] = {}
        self.loops: dict[str, LoopSpec] = {}
        self.adapters: dict[str, Callable[[Any], Any]] = {}
        self.builders: dict[str, Callable[..., Any]] = {}
        self.plan_kinds: dict[str, Any] = {}
        self.policy_sections: dict[str, PolicySection] = {}
        self.read_permissions: dict[str, str] = {}
        self.extra_permissions: dict[str, str] = {}
        self._owners: dict[tuple[str, Any], str] = {}
        self.included: list[str] = []

    @classmethod
    def discover(cls, packages: Iterable[str] = PACKAGES, extra: Iterable[Capability] = ()) -> Registry:
        """A registry of every capability declared in the modules of `packages` (plus `extra`)."""
        return cls().include(*find_capabilities(packages), *extra)

    def include(self, *capabilities: Capability) -> Registry:
        for cap in capabilities:
            for table, key, value in cap.entries:
                self._put(table, key, value, cap.name)
            self.included.append(cap.name)
        return self

    def _put(self, table: str, key: Any, value: Any, owner: str) -> None:
        if table not in ("read_permissions", "extra_permissions"):  # saying these twice is harmless
            earlier = self._owners.get((table, key))
            if earlier is not None:
                what = table.rstrip("s").replace("_", " ")
                raise DuplicateRegistration(
                    f"{what} {key!r} is registered twice (by {earlier} and by {owner})"
                )
            self._owners[(table, key)] = owner
        if table == "commands":
            command, name = key
            self.commands.setdefault(command, {})[name] = value
        else:
            getattr(self, table)[key] = value

    def known_permissions(self) -> set[str]:
        """Every permission something checks: the commands', the buttons', the declared ones."""
        known = {spec.permission for table in self.commands.values() for spec in table.values()}
        known |= {
            spec.permission
            for spec in (*self.actions.values(), *self.views.values())
            if spec.permission not in HANDLER_AUTHORIZES
        }
        return known | set(self.read_permissions) | set(self.extra_permissions)

    def subcommands_of(self, command: str) -> list[Subcommand]:
        seen: dict[str, Subcommand] = {}
        for spec in self.commands.get(command, {}).values():
            seen.setdefault(spec.name, spec)
        return list(seen.values())

    def adapter_factory(self, name: str) -> Callable[[Any], Any]:
        try:
            return self.adapters[name]
        except KeyError:
            known = ", ".join(sorted(self.adapters))
            raise KeyError(f"no adapter named {name!r} (known: {known})") from None

    def plan_kind(self, name: str) -> Any:
        try:
            return self.plan_kinds[name]
        except KeyError:
            raise KeyError(f"no plan kind named {name!r}") from None


def find_capabilities(packages: Iterable[str] = PACKAGES) -> list[Capability]:
    """Import every module of `packages` and collect what each declares as its module-level
    `capability`, in module order."""
    found: list[Capability] = []
    for package in packages:
        pkg = importlib.import_module(package)
        names = [package] + sorted(
            m.name for m in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}.") if not m.ispkg
        )
        for name in names:
            cap = getattr(importlib.import_module(name), "capability", None)
            if isinstance(cap, Capability) and all(cap is not c for c in found):
                found.append(cap)
    return found
