"""Cloud Assistant runs as the bot models them, with no vendor types: per-instance statuses and which of
them are final, ECS's error codes in plain words, command types by OS, Slack's escaping undone, and the
size rules for command content. Pure."""

from __future__ import annotations

import base64
import re
from collections import Counter
from dataclasses import asdict, dataclass, field

# Per-instance InvocationStatus values; these end an instance's run.
TERMINAL = frozenset(
    {"Success", "Failed", "Error", "Timeout", "Cancelled", "Terminated", "Invalid", "Aborted"}
)
ORDER = ("Failed", "Error", "Timeout", "Aborted", "Invalid", "Terminated", "Cancelled", "NoResult", "Success")
NO_RESULT = "NoResult"  # the bot's own: ECS reported nothing for the instance before the deadline
MAX_BASE64_BYTES = 24 * 1024  # RunCommand's limit for Base64 CommandContent
OUTPUT_LIMIT = 24 * 1024  # Cloud Assistant keeps at most this much output per instance

TYPES = {"shell": "RunShellScript", "bat": "RunBatScript", "powershell": "RunPowerShellScript"}
DEFAULT_TYPE_BY_OS = {"linux": "shell", "windows": "powershell"}
TYPE_OS = {"shell": "linux", "bat": "windows", "powershell": "windows"}

ERROR_WORDS = {
    "ClientNotRunning": "Cloud Assistant agent is not running",
    "ClientNotResponse": "Cloud Assistant agent does not answer",
    "ClientIsUpgrading": "Cloud Assistant agent is upgrading",
    "ClientNeedUpgrade": "Cloud Assistant agent needs an upgrade",
    "InstanceNotExists": "the instance does not exist",
    "InstanceReleased": "the instance was released",
    "InstanceNotRunning": "the instance is not running",
    "CommandNotApplicable": "the command type does not fit the instance's OS",
    "AccountNotExists": "the user to run as does not exist",
    "DirectoryNotExists": "the working directory does not exist",
    "DeliveryTimeout": "the command could not be delivered in time",
    "ExecutionTimeout": "the command ran past its timeout",
    "ExecutionException": "the command could not be executed",
    "ExecutionInterrupted": "the command was interrupted",
    "ExitCodeNonzero": "the command exited with a non-zero code",
    "SecurityGroupRuleDenied": "a security group rule blocks Cloud Assistant",
    "TaskConcurrencyLimit": "too many commands running on the instance",
    NO_RESULT: "ECS reported no result before the run's deadline",
}


def plain_error(code: str, info: str = "") -> str:
    words = ERROR_WORDS.get(code, "")
    if words and info and info.lower() not in words.lower():
        return f"{words} ({info})"
    return words or info or code


@dataclass(frozen=True)
class InstanceRun:
    """One instance's part of an invocation, as last read."""

    instance_id: str
    status: str = "Pending"
    exit_code: int | None = None
    error_code: str = ""
    error_info: str = ""
    dropped: int = 0  # bytes of output ECS did not keep
    start_time: str = ""
    finish_time: str = ""
    output: str | None = field(default=None, compare=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL or self.status == NO_RESULT

    @property
    def ok(self) -> bool:
        return self.status == "Success"

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("output")
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> InstanceRun:
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw and k != "output"}
        return cls(**known)


@dataclass(frozen=True)
class InvocationState:
    invoke_id: str
    status: str
    instances: tuple[InstanceRun, ...] = ()


def counts(runs) -> list[tuple[str, int]]:
    """(status, count), failures first, then the rest, Success last."""
    c = Counter(r.status for r in runs)
    ordered = [s for s in ORDER if s in c] + sorted(s for s in c if s not in ORDER)
    return [(s, c[s]) for s in ordered]


def group_outputs(runs) -> list[tuple[str, list[str]]]:
    """Identical outputs together: (output, instance ids), the largest group first."""
    groups: dict[str, list[str]] = {}
    for r in runs:
        groups.setdefault((r.output or "").rstrip("\n"), []).append(r.instance_id)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


_LINK = re.compile(r"<([^<>|]*)\|([^<>]*)>|<((?:https?|mailto|ftp)://[^<>|]*|mailto:[^<>|]*)>")


def unslack(text: str) -> str:
    """The command as the person typed it: Slack's links (`<http://x|x>`, `<http://x>`) back to their
    text, then `&lt;` `&gt;` `&amp;` back to characters (in that order, as Slack escapes `&` first)."""

    def link(m: re.Match) -> str:
        if m.group(2) is not None:
            return m.group(2)
        return m.group(3)

    text = _LINK.sub(link, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def base64_size(content: str) -> int:
    return len(base64.b64encode(content.encode()))


def first_lines(text: str | None, lines: int = 3, width: int = 200) -> list[str]:
    out = []
    for line in (text or "").splitlines()[:lines]:
        out.append(line if len(line) <= width else line[: width - 1] + "…")
    return out
