"""The pure parts of the Cloud Assistant emulator (`sandbox/cloud_assistant.py`): an instance entry's
timeline, the overall status of an invocation, request parameters and the response items.

An entry's `phases` is its timeline, [(time.monotonic(), status), …]: its status at a moment is the last
phase that has begun. A run is [(t0, Pending), (t0 + 0.1, Running), (end, Success|Failed|Timeout)], a
refusal is [(t0, Aborted|Invalid)]; StopInvocation cuts it and appends (now, Stopping),
(now + 0.2, Terminated) or (now, Cancelled).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Any

from sandbox.acs import AcsError, decode_token, encode_token, flat_list, parse_int, require

PENDING_SECONDS = 0.1
STOPPING_SECONDS = 0.2
OUTPUT_LIMIT = 24576  # bytes kept of a command's output
CONTENT_LIMIT = 24576  # bytes of Base64 command content
TYPES = {"RunShellScript": "linux", "RunBatScript": "windows", "RunPowerShellScript": "windows"}
ACTIVE = ("Pending", "Running", "Stopping")
STOPPED = ("Cancelled", "Terminated")
WITH_OUTPUT = ("Success", "Failed", "Timeout")
# per-instance InvocationStatus → InvokeRecordStatus (anything else: Failed), InstanceInvokeStatus
RECORD_STATUS = {"Pending": "Running", "Running": "Running", "Stopping": "Stopping", "Success": "Finished"}
RECORD_STATUS.update({s: "Stopped" for s in STOPPED})
INSTANCE_STATUS = {**RECORD_STATUS, "Pending": "Pending"}
INVOKE_STATUS = {"Pending": "Running", "Success": "Finished"}  # overall InvocationStatus → InvokeStatus
RECORD_FILTER = ("Running", "Finished", "Failed", "PartialFailed", "Stopped", "Stopping")
OVERALL = ("Pending", "Running", "Success", "Failed", "PartialFailed", "Stopping", "Stopped", "Finished")
ERROR_INFO = {
    "ExitCodeNonzero": "The command exited with a non-zero exit code.",
    "ExecutionTimeout": "The command did not finish within the timeout and was killed.",
    "InstanceNotRunning": "The instance was not running when the task was created.",
    "ClientNotRunning": "The Cloud Assistant agent is not running on the instance.",
    "CommandNotApplicable": "The command type is not applicable to the operating system of the instance.",
}
AGENT_VERSION = {"linux": "2.2.3.398", "windows": "2.1.3.398"}

Behaviour = Callable[[dict, str, str], tuple[float, int, str]]


def iso(wall: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall)) if wall else ""


# timelines --------------------------------------------------------------------------------------------


def phase_at(entry: dict, now: float) -> tuple[str, float]:
    """(status, since when) of an entry at monotonic time `now`."""
    since, status = entry["phases"][0]
    for at, phase in entry["phases"]:
        if at <= now:
            since, status = at, phase
    return status, since


def new_entry(inst: dict, running: bool, agent: str, run: tuple[Behaviour, str, str, int], t0: float) -> dict:
    """An instance's entry for a command sent at `t0`: refused at once, or its whole run planned.
    `run` is (behaviour, text, type, timeout)."""
    behaviour, text, command_type, timeout = run
    entry: dict[str, Any] = {"InstanceId": inst["InstanceId"], "status": "Pending", "duration": 0.0}
    entry.update(exit_code=None, output="", error_code="", error_info="", finished_at=None)
    if TYPES[command_type] != inst.get("OSType", "linux"):
        refusal = ("Invalid", "CommandNotApplicable")
    elif not running:
        refusal = ("Aborted", "InstanceNotRunning")
    elif agent != "running":
        refusal = ("Aborted", "ClientNotRunning")
    else:
        refusal = None
    if refusal:
        entry.update(error_code=refusal[1], error_info=ERROR_INFO[refusal[1]], phases=[(t0, refusal[0])])
        return entry
    duration, exit_code, output = behaviour(dict(inst), text, command_type)
    run_at = t0 + PENDING_SECONDS
    if duration > timeout:
        final, end, code, exit_code = "Timeout", run_at + timeout, "ExecutionTimeout", -1
    else:
        final, code = ("Success", "") if exit_code == 0 else ("Failed", "ExitCodeNonzero")
        end = run_at + max(0.0, duration)
    entry.update(duration=float(duration), exit_code=int(exit_code), output=output, error_code=code)
    entry.update(
        error_info=ERROR_INFO.get(code, ""), phases=[(t0, "Pending"), (run_at, "Running"), (end, final)]
    )
    return entry


def stop_entry(entry: dict, now: float) -> bool:
    """StopInvocation on one entry: Running → Stopping → Terminated, Pending → Cancelled; False when it
    had nothing left to stop."""
    status, _ = phase_at(entry, now)
    kept = [p for p in entry["phases"] if p[0] <= now]
    if status == "Pending":
        entry["phases"] = [*kept, (now, "Cancelled")]
    elif status == "Running":
        entry["phases"] = [*kept, (now, "Stopping"), (now + STOPPING_SECONDS, "Terminated")]
    else:
        return False
    entry.update(exit_code=None, error_code="", error_info="")
    return True


def overall(statuses: list[str]) -> str:
    """An invocation's InvocationStatus from its instances' statuses."""
    if "Stopping" in statuses:
        return "Stopping"
    if all(s == "Pending" for s in statuses):
        return "Pending"
    if any(s in ACTIVE for s in statuses):
        return "Running"
    if any(s in STOPPED for s in statuses):
        return "Stopped"
    ok = statuses.count("Success")
    return "Success" if ok == len(statuses) else "Failed" if ok == 0 else "PartialFailed"


# request parameters -----------------------------------------------------------------------------------


def wants_base64(q: dict[str, str]) -> bool:
    """The describe calls' ContentEncoding: Base64 unless PlainText (any case)."""
    return (q.get("ContentEncoding") or "Base64").lower() != "plaintext"


def encode(text: str, as_base64: bool) -> str:
    return base64.b64encode(text.encode()).decode() if as_base64 else text


def command_text(q: dict[str, str]) -> str:
    """RunCommand's CommandContent decoded (ContentEncoding Base64, any case; anything else is plain
    text); its Base64 form may be at most 24 KB."""
    content = require(q, "CommandContent")
    if (q.get("ContentEncoding") or "").lower() != "base64":
        encoded = encode(content, True)
    else:
        encoded = content
        try:
            content = base64.b64decode(content, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise AcsError(
                400, "InvalidParameter.CommandContent", "CommandContent is not valid Base64."
            ) from None
    if len(encoded) > CONTENT_LIMIT:
        raise AcsError(
            400,
            "InvalidParameter.CommandContent",
            "The Base64-encoded CommandContent exceeds the 24 KB limit.",
        )
    return content


def instance_ids(q: dict[str, str], limit: int, required: bool) -> list[str]:
    ids = list(dict.fromkeys(flat_list(q, "InstanceId")))
    if required and not ids:
        raise AcsError(400, "MissingParameter.InstanceId", "InstanceId.N is mandatory for this action.")
    if len(ids) > limit:
        raise AcsError(400, "InvalidParameter.InstanceId", f"InstanceId.N accepts at most {limit} ids.")
    return ids


def status_filter(q: dict[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = q.get(name) or None
    if value is not None and value not in allowed:
        raise AcsError(400, f"InvalidParameter.{name}", f"{name} {value!r} is not supported.")
    return value


def page(q: dict[str, str], items: list, default: int = 10) -> tuple[list, dict[str, Any]]:
    """MaxResults (1 to 50) + NextToken, or the legacy PageNumber + PageSize (1 to 50)."""
    if "MaxResults" in q or "NextToken" in q:
        size = parse_int(q, "MaxResults", default, 1, 50)
        offset = decode_token(q.get("NextToken"))
        number = offset // size + 1
    else:
        number = parse_int(q, "PageNumber", 1, 1)
        size = parse_int(q, "PageSize", default, 1, 50)
        offset = (number - 1) * size
    token = encode_token(offset + size) if offset + size < len(items) else ""
    meta = {"PageNumber": number, "PageSize": size, "TotalCount": len(items), "NextToken": token}
    return items[offset : offset + size], meta


# response items ---------------------------------------------------------------------------------------


def _times(record: dict, entry: dict, now: float) -> dict[str, str]:
    def wall(at: float | None) -> str:
        return iso(record["created_at"] + (at - record["created_mono"])) if at is not None else ""

    started = next((at for at, s in entry["phases"] if s == "Running" and at <= now), None)
    stopped = next((at for at, s in entry["phases"] if s in ("Stopping", "Cancelled")), None)
    return {
        "CreationTime": iso(record["created_at"]),
        "StartTime": wall(started),
        "FinishTime": iso(entry["finished_at"]),
        "StopTime": wall(stopped),
        "UpdateTime": wall(phase_at(entry, now)[1]),
    }


def _result(entry: dict, as_base64: bool) -> dict[str, Any]:
    done = entry["status"] not in ACTIVE
    raw = entry["output"].encode() if entry["status"] in WITH_OUTPUT else b""
    kept = raw[:OUTPUT_LIMIT]
    out: dict[str, Any] = {
        "InstanceId": entry["InstanceId"],
        "InvocationStatus": entry["status"],
        "Output": base64.b64encode(kept).decode() if as_base64 else kept.decode(errors="ignore"),
        "Dropped": len(raw) - len(kept),
        "ErrorCode": entry["error_code"] if done else "",
        "ErrorInfo": entry["error_info"] if done else "",
        "Repeats": 1 if any(s == "Running" for _, s in entry["phases"]) else 0,
    }
    if done:
        out["ExitCode"] = entry["exit_code"] if entry["exit_code"] is not None else -1
    return out


def invocation_item(record: dict, status: str, include_output: bool, as_base64: bool, now: float) -> dict:
    """One Invocations.Invocation of DescribeInvocations, every instance in InvokeInstances."""
    instances = []
    for entry in record["instances"].values():
        item = _result(entry, as_base64)
        if not include_output:
            item.pop("Output")
        item.update(InstanceInvokeStatus=INSTANCE_STATUS.get(entry["status"], "Failed"), Timed=False)
        instances.append({**item, **_times(record, entry, now)})
    return {
        "InvokeId": record["InvokeId"],
        "CommandId": record["CommandId"],
        "CommandName": record["Name"],
        "CommandType": record["CommandType"],
        "CommandContent": encode(record["command"], as_base64),
        "InvocationStatus": status,
        "InvokeStatus": INVOKE_STATUS.get(status, status),
        "RepeatMode": "Once",
        "Timed": False,
        "Timeout": record["Timeout"],
        "Username": record["Username"],
        "WorkingDir": record["WorkingDir"],
        "CreationTime": iso(record["created_at"]),
        "InvokeInstances": {"InvokeInstance": instances},
    }


def result_item(record: dict, entry: dict, as_base64: bool, now: float) -> dict:
    """One InvocationResults.InvocationResult of DescribeInvocationResults (its key is FinishedTime)."""
    times = _times(record, entry, now)
    item = _result(entry, as_base64)
    item.update(
        InvokeId=record["InvokeId"],
        CommandId=record["CommandId"],
        InvokeRecordStatus=RECORD_STATUS.get(entry["status"], "Failed"),
        StartTime=times["StartTime"],
        FinishedTime=times["FinishTime"],
        StopTime=times["StopTime"],
        Username=record["Username"],
        TerminationMode="Process",
        Tags={"Tag": []},
    )
    return item


def agent_item(inst: dict, agent: str, online: bool, delivered: list[tuple[dict, dict]]) -> dict:
    """One InstanceCloudAssistantStatus; `delivered` are the (record, entry) pairs that ran on it."""
    family = inst.get("OSType", "linux")
    return {
        "InstanceId": inst["InstanceId"],
        "CloudAssistantStatus": "true" if online else "false",
        "CloudAssistantVersion": "" if agent == "not-installed" else AGENT_VERSION[family],
        "OSType": family.capitalize(),
        "LastHeartbeatTime": iso(time.time()) if online else "",
        "ActiveTaskCount": sum(1 for _, e in delivered if e["status"] in ACTIVE),
        "InvocationCount": len(delivered),
        "LastInvokedTime": iso(max((r["created_at"] for r, _ in delivered), default=None)),
        "SupportSessionManager": online,
    }
