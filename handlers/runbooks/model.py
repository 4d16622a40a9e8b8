"""The policy's `runbooks` section: multi-step workflows on ECS, validated at start. Pure.

    runbooks:
      nightly-batch:
        description: "Start the batch machines, run the batch, stop them again"
        channel: C0OPS                    # where cron- and event-triggered runs report
        params: {day: {type: str, default: "today", pattern: "^[a-z0-9-]+$"}}
        trigger:
          cron: "0 2 * * mon-fri"         # in `timezone` (default: the top-level one), DST-correct
          timezone: Asia/Tokyo
          event: {name: "Instance:SystemMaintenance.Reboot", selector: "tag:role=batch"}   # see Event
        concurrency: 1                    # runs at once; one more is refused with a link to the running one
        steps:
          - {power: start, selector: "tag:role=batch", wait: true}
          - name: batch
            run: "/opt/batch/run.sh {{ day | quote }}"   # or `template: NAME` with `params`
            selector: "tag:role=batch"
            timeout_seconds: 3600
            success: all                  # all | any | N%
            retry: {attempts: 2, backoff_seconds: 30}
            on_failure: [stop]            # abort (default) | continue | names of steps to run
          - {name: stop, power: stop, selector: "tag:role=batch"}
          - {notify: "batch {{ batch.status }}: {{ batch.output }}", channel: C0OPS, when: {failed: batch}}
        recovery:                         # steps that run only when an `on_failure` names them
          - {name: page, incident: "nightly batch failed on {{ day }}", urgency: high}

Step kinds: `power` (start | stop | reboot), `run`, `wait` (`3s`, `5m`, or `{selector, status}`),
`approve` (Approve / Deny buttons; `approvers`: roles, `ttl_seconds`), `notify` (`channel`), `incident`
(`service`, `urgency`). Text fields are Jinja2 templates (the sandbox of handlers.ecs.run_templates): they
may name the parameters, `run_id`, `runbook`, and the results of earlier steps by their `name`
(`{{ batch.status }}`, `.output`, `.summary`; an incident step's `.id`, `.number`, `.url`); any other
name stops start-up, naming the field.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from jinja2 import TemplateError, meta
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.selectors import SelectorError, parse_selector
from handlers.ecs.run_templates import ENV, NAME, PARAM, Param

KINDS = ("power", "run", "wait", "approve", "notify", "incident")
POWER = ("start", "stop", "reboot")
BUILTINS = frozenset({"run_id", "runbook"})
DURATION = re.compile(r"^(\d{1,6})\s*([smh]?)$")
SUCCESS = re.compile(r"^(all|any|(\d{1,3})%)$")
TEXT_FIELDS = ("run", "selector", "notify", "approve", "incident", "details")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _selector(text: str) -> str:
    if "{{" in text or "{%" in text:
        return text  # checked once rendered
    try:
        parse_selector(text)
    except SelectorError as exc:
        raise ValueError(f"selector {text!r}: {exc.message}") from None
    return text


def parse_duration(value: str | int) -> int:
    """Seconds in `90`, `90s`, `5m`, `2h`; ValueError otherwise."""
    m = DURATION.match(str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not a duration (e.g. 30s, 5m, 2h)")
    return int(m.group(1)) * _UNITS[m.group(2)]


class Retry(_Model):
    attempts: int = Field(default=1, ge=1, le=10)  # tries in all, the first included
    backoff_seconds: float = Field(default=10.0, ge=0, le=3600)


class Until(_Model):
    """`wait: {selector, status}`: until every matching instance has the status."""

    selector: str
    status: Literal["Running", "Stopped"] = "Running"

    @field_validator("selector")
    @classmethod
    def _sel(cls, value: str) -> str:
        return _selector(value)


class When(_Model):
    succeeded: str | None = None
    failed: str | None = None

    @model_validator(mode="after")
    def _one(self) -> When:
        if (self.succeeded is None) == (self.failed is None):
            raise ValueError("`when` names one earlier step: {succeeded: NAME} or {failed: NAME}")
        return self

    @property
    def step(self) -> str:
        return self.succeeded or self.failed or ""


class Step(_Model):
    kind: Literal["power", "run", "wait", "approve", "notify", "incident"]
    name: Annotated[str, Field(pattern=PARAM)] | None = None
    power: Literal["start", "stop", "reboot"] | None = None
    run: str | None = None
    template: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    type: Literal["shell", "bat", "powershell"] | None = None
    success: str = "all"
    selector: str | None = None
    wait: bool | str | int | Until | None = None
    approve: str | None = None
    approvers: tuple[str, ...] = ()
    ttl_seconds: int = Field(default=1800, ge=60, le=7 * 86400)
    notify: str | None = None
    channel: str | None = None
    incident: str | None = None
    details: str | None = None
    service: str | None = None
    urgency: Literal["high", "low"] | None = None
    timeout_seconds: int | None = Field(default=None, ge=1, le=86400)
    retry: Retry = Retry()
    when: When | None = None
    on_failure: Literal["abort", "continue"] | tuple[Annotated[str, Field(pattern=PARAM)], ...] = "abort"

    @model_validator(mode="before")
    @classmethod
    def _kind(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or "kind" in raw:
            return raw
        unknown = sorted(k for k in raw if k not in cls.model_fields)
        if unknown:
            raise ValueError(
                f"unknown key `{unknown[0]}` (a step is one of {', '.join(KINDS)}, with name, selector, "
                "timeout_seconds, retry, when, on_failure …)"
            )
        kinds = [
            k
            for k in KINDS
            if (k in raw or (k == "run" and "template" in raw)) and not (k == "wait" and "power" in raw)
        ]
        if len(kinds) != 1:
            said = " and ".join(kinds) if kinds else "none"
            raise ValueError(f"a step is exactly one of {', '.join(KINDS)} (found {said})")
        return {**raw, "kind": kinds[0]}

    @model_validator(mode="after")
    def _complete(self) -> Step:
        needs_selector = self.kind in ("power", "run")
        if needs_selector and not self.selector:
            raise ValueError(f"selector: a {self.kind} step needs a `selector`")
        if self.selector:
            _selector(self.selector)
        if self.kind == "run":
            if (self.run is None) == (self.template is None):
                raise ValueError("run: give a command (`run: …`) or `template: NAME`, not both")
            if not SUCCESS.match(self.success) or (
                self.success.endswith("%") and int(self.success[:-1]) > 100
            ):
                raise ValueError(f"success: {self.success!r} is not all, any or N% (1-100)")
        if self.kind == "wait":
            if isinstance(self.wait, bool) or self.wait is None:
                raise ValueError("wait: a duration (30s, 5m) or {selector, status}")
            if not isinstance(self.wait, Until):
                parse_duration(self.wait)
        if self.kind == "power" and self.wait not in (None, True, False):
            raise ValueError("wait: on a power step, `wait: true` waits for the target state")
        if self.kind == "notify" and not self.notify:
            raise ValueError("notify: the message to post")
        if self.kind == "incident" and not self.incident:
            raise ValueError("incident: the incident's title")
        for field in TEXT_FIELDS:
            value = getattr(self, field)
            if isinstance(value, str):
                try:
                    ENV.parse(value)
                except TemplateError as exc:
                    raise ValueError(f"{field}: not a valid template: {exc}") from None
        return self

    @property
    def label(self) -> str:
        return self.name or self.kind

    @property
    def wait_seconds(self) -> int | None:
        return None if self.kind != "wait" or isinstance(self.wait, Until) else parse_duration(self.wait)

    def texts(self) -> Iterator[tuple[str, str]]:
        """(field, template text) of every field rendered before the step runs."""
        for field in TEXT_FIELDS:
            value = getattr(self, field)
            if isinstance(value, str):
                yield field, value
        if isinstance(self.wait, Until):
            yield "wait.selector", self.wait.selector
        for key, value in self.params.items():
            yield f"params.{key}", value


ANNOUNCED = ("Scheduled", "Inquiring", "Executing")  # a system event that is still to come or under way


class Event(_Model):
    """`name`: the ECS event's name, e.g. Instance:StateChange; `*` at the end makes it a prefix. A
    system event's name ends in its status (Instance:SystemMaintenance.Reboot:Scheduled, …:Executed):
    named without one, it matches the event while it is announced or under way (ANNOUNCED), and starts
    one run per system event, not one per status notice."""

    name: Annotated[str, Field(min_length=1)]
    selector: str | None = None

    @field_validator("selector")
    @classmethod
    def _sel(cls, value: str | None) -> str | None:
        return value if value is None else _selector(value)

    def matches(self, event_name: str) -> bool:
        if self.name.endswith("*"):
            return event_name.startswith(self.name[:-1])
        return event_name == self.name or self.by_system_event(event_name)

    def by_system_event(self, event_name: str) -> bool:
        """Whether the name matches as a system event named without its status."""
        base, _, status = event_name.rpartition(":")
        return self.name.count(":") == 1 and base == self.name and status in ANNOUNCED


class Trigger(_Model):
    cron: str | None = None
    timezone: str | None = None
    event: Event | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            CronSim(value, dt.datetime(2026, 1, 1))
        except CronSimError as exc:
            raise ValueError(f"{value!r} is not a cron expression ({exc})") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value


class Runbook(_Model):
    description: str = ""
    channel: str | None = None
    params: dict[Annotated[str, Field(pattern=PARAM)], Param] = Field(default_factory=dict)
    trigger: Trigger = Trigger()
    concurrency: int = Field(default=1, ge=1, le=100)
    steps: tuple[Step, ...] = Field(min_length=1, max_length=50)
    recovery: tuple[Step, ...] = Field(default=(), max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> Runbook:
        check_runbook(self)
        return self

    def all_steps(self) -> tuple[Step, ...]:
        return (*self.steps, *self.recovery)

    def index_of(self, name: str) -> int:
        return next(i for i, s in enumerate(self.all_steps()) if s.name == name)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Asia/Tokyo)") from None


def undeclared(text: str) -> set[str]:
    """The names a template reads (parsed, never rendered)."""
    return set(meta.find_undeclared_variables(ENV.parse(text)))


def check_runbook(book: Runbook) -> None:
    """Names unique and known, templates reading only what exists before them, no cycle in `on_failure`;
    ValueError naming the field."""
    steps = book.all_steps()
    main = len(book.steps)

    def where(i: int) -> str:
        return f"steps[{i}]" if i < main else f"recovery[{i - main}]"

    names: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.name is None:
            if i >= main:
                raise ValueError(f"{where(i)}.name: a recovery step needs a name (on_failure names it)")
            continue
        if step.name in names:
            raise ValueError(f"{where(i)}.name: {step.name!r} names two steps")
        if step.name in book.params or step.name in BUILTINS:
            raise ValueError(f"{where(i)}.name: {step.name!r} is also a parameter or a built-in name")
        names[step.name] = i
    for i, step in enumerate(steps):
        before = {s.name for s in steps[:i] if s.name} if i < main else {s.name for s in book.steps if s.name}
        known = set(book.params) | BUILTINS | before
        for field, text in step.texts():
            missing = sorted(undeclared(text) - known)
            if missing:
                raise ValueError(
                    f"{where(i)}.{field}: {{{{ {missing[0]} }}}} is not a parameter or an earlier step's "
                    f"name (known: {', '.join(sorted(known)) or 'none'})"
                )
        if step.when is not None and step.when.step not in before:
            raise ValueError(f"{where(i)}.when: {step.when.step!r} is not the name of an earlier step")
        if isinstance(step.on_failure, tuple):
            for name in step.on_failure:
                if name not in names:
                    raise ValueError(f"{where(i)}.on_failure: there is no step named {name!r}")
    cycle = failure_cycle(book)
    if cycle:
        raise ValueError(f"{where(names[cycle[0]])}.on_failure: a cycle ({' → '.join(cycle)})")


def failure_cycle(book: Runbook) -> list[str] | None:
    """A cycle of `on_failure` references (names, the first repeated at the end), or None."""
    edges = {
        s.name: list(s.on_failure) if isinstance(s.on_failure, tuple) else []
        for s in book.all_steps()
        if s.name
    }
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for nxt in edges.get(name, ()):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [name, nxt]
            if nxt not in state:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[name] = 2
        return None

    for name in edges:
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return None


def validate_runbooks(runbooks: dict[str, Runbook], templates: dict, default_zone: str | None) -> None:
    """What needs other sections: names, run templates named by a step, the cron's zone."""
    for name, book in runbooks.items():
        if not re.match(NAME, name):
            raise ValueError(f"runbooks.{name}: not a runbook name (a-z, 0-9, - and _)")
        for i, step in enumerate(book.all_steps()):
            if step.template is not None and step.template not in templates:
                where = f"steps[{i}]" if i < len(book.steps) else f"recovery[{i - len(book.steps)}]"
                raise ValueError(
                    f"runbooks.{name}.{where}.template: there is no run template {step.template!r}"
                )
        if book.trigger.cron and not (book.trigger.timezone or default_zone):
            raise ValueError(f"runbooks.{name}.trigger.timezone: no time zone (set it or the top-level one)")


def cron_zone(book: Runbook, default_zone: str | None) -> ZoneInfo:
    return zone(book.trigger.timezone or default_zone or "UTC")


def next_fire(book: Runbook, after: dt.datetime, default_zone: str | None) -> dt.datetime | None:
    """The first cron time strictly after `after` (aware), in the runbook's zone; None without a cron."""
    if not book.trigger.cron:
        return None
    local = after.astimezone(cron_zone(book, default_zone))
    return next(iter(CronSim(book.trigger.cron, local)))


def fires_between(
    book: Runbook, since: dt.datetime, until: dt.datetime, default_zone: str | None
) -> dt.datetime | None:
    """The latest cron time in (since, until], or None."""
    latest = None
    t = next_fire(book, since, default_zone)
    for _ in range(10000):
        if t is None or t > until:
            break
        latest = t
        t = next_fire(book, t, default_zone)
    return latest
