"""`/ecs run …`: parsing the command line and freezing what a run would do (the run plan). Pure.

    /ecs run SELECTOR [--type shell|bat|powershell] [--timeout S] [--user NAME] [--dir PATH] -- COMMAND
    /ecs run SELECTOR template NAME [KEY=VALUE ...]

The command after ` -- ` is taken as typed (Slack's escaping undone), never re-split; so are a
template's `KEY=VALUE` values (their escaping undone before they are checked). Without `--type`
the type follows the instances' OS (Linux: shell, Windows: PowerShell); a selection of both is refused
with the counts. Instances that cannot run it (not Running, agent not running, the other OS) are listed
in the preview and left out.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field

from bot.ecs_model import InstanceInfo
from bot.errors import UserError
from bot.render import escape
from bot.run_model import DEFAULT_TYPE_BY_OS, MAX_BASE64_BYTES, TYPE_OS, TYPES, base64_size, unslack
from bot.selectors import GRAMMAR, Selector, SelectorError, parse_terms, tokenize
from handlers.ecs.plan import sort_instances

RUN_USAGE = (
    "/ecs run SELECTOR [--type shell|bat|powershell] [--timeout SECONDS] [--user NAME] [--dir PATH] -- COMMAND\n"
    "/ecs run SELECTOR template NAME [KEY=VALUE ...]\n"
    "/ecs run status INVOKE_ID · /ecs run stop INVOKE_ID\n" + GRAMMAR
)
BATCH = 100
USER = re.compile(r"^[A-Za-z0-9._\\-]{1,64}$")


@dataclass(frozen=True)
class RunRequest:
    """What the person asked for, parsed."""

    selector: Selector
    command: str | None = None  # free text, after ` -- `
    template: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    type: str | None = None  # shell | bat | powershell
    timeout: int | None = None
    user: str | None = None
    directory: str | None = None


def parse_run_args(text: str) -> RunRequest:
    raw = text.strip()
    command = None
    split = re.search(r"(?:^|\s)--(?:\s|$)", raw)  # the first ` -- ` (or a line of its own)
    if split:
        head, command = raw[: split.start()], raw[split.end() :]
    else:
        head = raw
    tokens = tokenize(head, RUN_USAGE)
    terms: list[str] = []
    options: dict[str, str] = {}
    template, params = None, {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "template":
            if i >= len(tokens):
                raise SelectorError("Name the template: `template NAME [KEY=VALUE ...]`.", RUN_USAGE)
            template = tokens[i]
            for pair in tokens[i + 1 :]:
                key, eq, value = pair.partition("=")
                if not eq or not key:
                    raise SelectorError(f"`{pair}` is not KEY=VALUE.", RUN_USAGE)
                params[key] = unslack(value)
            break
        if token.startswith("--"):
            name, _, inline = token.partition("=")
            if name not in ("--type", "--timeout", "--user", "--dir"):
                raise SelectorError(f"`{token}` is not an option of `/ecs run`.", RUN_USAGE)
            if not inline:
                if i >= len(tokens):
                    raise SelectorError(f"`{name}` needs a value.", RUN_USAGE)
                inline, i = tokens[i], i + 1
            options[name] = inline
            continue
        terms.append(token)
    selector = parse_terms(terms, RUN_USAGE)
    if selector.is_empty:
        raise SelectorError("Say which instances: ids, tags, a name or a status.", RUN_USAGE)
    if template is not None and command is not None:
        raise SelectorError("Give a template or a command after ` -- `, not both.", RUN_USAGE)
    if template is None:
        if command is None:
            raise SelectorError(
                "Put the command after ` -- `, e.g. `/ecs run tag:env=dev -- uptime`.", RUN_USAGE
            )
        command = unslack(command).strip()
        if not command:
            raise SelectorError("The command after ` -- ` is empty.", RUN_USAGE)
    kind = options.get("--type")
    if kind is not None and kind.lower() not in TYPES:
        raise SelectorError(f"`--type {kind}`: use shell, bat or powershell.", RUN_USAGE)
    timeout = None
    if "--timeout" in options:
        value = options["--timeout"].removesuffix("s")
        if not value.isdigit() or not 1 <= int(value) <= 86400:
            raise SelectorError("`--timeout` is a number of seconds from 1 to 86400.", RUN_USAGE)
        timeout = int(value)
    user = options.get("--user")
    if user is not None and not USER.match(user):
        raise SelectorError(f"`--user {user}` is not a user name.", RUN_USAGE)
    directory = unslack(options["--dir"]) if "--dir" in options else None
    return RunRequest(
        selector, command, template, params, kind.lower() if kind else None, timeout, user, directory
    )


@dataclass(frozen=True)
class RunPlan:
    plan_id: str
    selector: str
    region: str
    command: str  # what runs (a template rendered)
    type: str  # shell | bat | powershell
    timeout: int
    username: str | None
    working_dir: str | None
    template: str | None
    params: dict
    requester: str
    channel: str | None
    created_at: float
    expires_at: float
    targets: tuple[InstanceInfo, ...]
    skipped: tuple[tuple[InstanceInfo, str], ...] = ()  # cannot run it, and why

    @property
    def target_ids(self) -> list[str]:
        return [i.instance_id for i in self.targets]

    @property
    def api_type(self) -> str:
        return TYPES[self.type]

    @property
    def permission(self) -> str:
        return f"ecs.run.template.{self.template}" if self.template else "ecs.run"

    def batches(self) -> list[list[str]]:
        ids = self.target_ids
        return [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]

    def client_token(self, batch: int) -> str:
        """Stable per run and batch (≤ 64 ASCII): the same request sent again starts nothing new."""
        return "chatops-" + hashlib.sha256(f"{self.plan_id}|{batch}".encode()).hexdigest()[:40]

    def summary(self) -> str:
        what = f"template {self.template}" if self.template else "a command"
        return f"run {what} on {len(self.targets)} instance(s) matching {self.selector} in {self.region}"

    def as_dict(self) -> dict:
        return {
            **{k: getattr(self, k) for k in _SCALARS},
            "params": dict(self.params),
            "targets": [i.as_dict() for i in self.targets],
            "skipped": [[i.as_dict(), why] for i, why in self.skipped],
        }

    @classmethod
    def from_dict(cls, raw: dict) -> RunPlan:
        return cls(
            **{k: raw.get(k) for k in _SCALARS},
            params=dict(raw.get("params") or {}),
            targets=tuple(InstanceInfo.from_dict(i) for i in raw.get("targets") or ()),
            skipped=tuple((InstanceInfo.from_dict(i), why) for i, why in raw.get("skipped") or ()),
        )


_SCALARS = (
    "plan_id",
    "selector",
    "region",
    "command",
    "type",
    "timeout",
    "username",
    "working_dir",
    "template",
    "requester",
    "channel",
    "created_at",
    "expires_at",
)


def os_of(info: InstanceInfo) -> str:
    return "windows" if (info.os_type or "").lower() == "windows" else "linux"


def choose_type(asked: str | None, instances: list[InstanceInfo]) -> str:
    """The command type: as asked, else by the instances' OS (refused for a mix, with the counts)."""
    if asked:
        return asked
    systems = Counter(os_of(i) for i in instances)
    if len(systems) > 1:
        raise UserError(
            f"These instances run {systems['linux']} Linux and {systems['windows']} Windows: a command is "
            "for one of them. Add `--type shell` (Linux) or `--type powershell` / `--type bat` (Windows), "
            "or narrow the selector (e.g. `name:web-*`).",
            RUN_USAGE,
        )
    return DEFAULT_TYPE_BY_OS[next(iter(systems), "linux")]


def check_content(command: str, max_bytes: int) -> None:
    size = len(command.encode())
    if size > max_bytes:
        raise UserError(
            f"The command is {size:,} bytes; the policy allows {max_bytes:,} (`run.max_command_bytes`). "
            "Put a long script on the instances and run that.",
            RUN_USAGE,
        )
    if base64_size(command) > MAX_BASE64_BYTES:
        raise UserError(
            f"The command is {base64_size(command):,} bytes once Base64-encoded; Cloud Assistant takes at "
            f"most {MAX_BASE64_BYTES:,}.",
            RUN_USAGE,
        )


def build_run_plan(
    request: RunRequest,
    command: str,
    kind: str,
    timeout: int,
    instances: list[InstanceInfo],
    agents: dict[str, bool],
    *,
    plan_id: str,
    region: str,
    requester: str,
    channel: str | None,
    now: float,
    ttl_seconds: float,
) -> RunPlan:
    """Split the instances into those that will run the command and those that cannot, and why."""
    targets, skipped = [], []
    for info in sort_instances(instances):
        if info.status != "Running":
            skipped.append((info, f"{info.status or 'unknown'}: not running"))
        elif os_of(info) != TYPE_OS[kind]:
            skipped.append((info, f"{os_of(info).title()}: a {kind} command does not run there"))
        elif not agents.get(info.instance_id, False):
            skipped.append((info, "Cloud Assistant agent is not running"))
        else:
            targets.append(info)
    return RunPlan(
        plan_id=plan_id,
        selector=request.selector.text(),
        region=region,
        command=command,
        type=kind,
        timeout=timeout,
        username=request.user,
        working_dir=request.directory,
        template=request.template,
        params=dict(request.params),
        requester=requester,
        channel=channel,
        created_at=now,
        expires_at=now + ttl_seconds,
        targets=tuple(targets),
        skipped=tuple(skipped),
    )


def nothing_runs(plan: RunPlan) -> str:
    reasons = Counter(why for _, why in plan.skipped)
    listed = "; ".join(f"{n} × {escape(why)}" for why, n in reasons.most_common())
    return (
        f":information_source: No instance matching `{escape(plan.selector)}` in {plan.region} can run this "
        f"{plan.type} command ({listed or 'none matched'})."
    )
