"""ECS events as CloudMonitor puts them on an MNS queue (protocols.md §6): the builders, the MNS
emulator's feed (`EventFeed`: state changes from the ECS emulator, interruptions, system events) and
the console's `inject` command that puts them on the sandbox's queue.

Both envelope shapes are built here: (a) the ECS event notification, (b) the CloudMonitor system event;
bodies are Base64 (what CloudMonitor writes) or raw JSON.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
import uuid
from typing import Any

from sandbox import credentials
from sandbox.console_commands import console_command

ACCOUNT_UID = "1234567890123456"
_UTC8 = dt.timezone(dt.timedelta(hours=8))


def encode_body(event: dict[str, Any], encoding: str = "base64") -> str:
    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(text.encode()).decode() if encoding == "base64" else text


def _arn(region: str, instance_id: str) -> str:
    return f"acs:ecs:{region}:{ACCOUNT_UID}:instance/{instance_id}"


def _compact_now(when: float | None = None) -> str:
    """ECS notification time format, UTC+8: 20181226T220114.058+0800."""
    local = dt.datetime.fromtimestamp(when if when is not None else time.time(), _UTC8)
    return local.strftime("%Y%m%dT%H%M%S.") + f"{local.microsecond // 1000:03d}+0800"


def state_change_event(
    instance: dict[str, Any],
    state: str,
    shape: str = "a",
    when: float | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    iid = instance["InstanceId"]
    region = instance.get("RegionId") or credentials.REGION_ID
    if shape == "b":
        return {
            "product": "ECS",
            "resourceId": _arn(region, iid),
            "level": "INFO",
            "instanceName": instance.get("InstanceName") or iid,
            "regionId": region,
            "groupId": "0",
            "name": "Instance:StateChange",
            "eventType": "StatusNotification",
            "time": int((when if when is not None else time.time()) * 1000),
            "content": {"instanceId": iid, "state": state},
            "status": "Normal",
        }
    return {
        "id": event_id or str(uuid.uuid4()).upper(),
        "eventTime": _compact_now(when),
        "level": "INFO",
        "name": "Instance:StateChange",
        "product": "ECS",
        "regionId": region,
        "resourceId": _arn(region, iid),
        "userId": ACCOUNT_UID,
        "ver": "1.0",
        "content": {"resourceId": iid, "resourceType": "ALIYUN::ECS::Instance", "state": state},
    }


def interruption_event(instance: dict[str, Any]) -> dict[str, Any]:
    iid = instance["InstanceId"]
    region = instance.get("RegionId") or credentials.REGION_ID
    return {
        "product": "ECS",
        "resourceId": _arn(region, iid),
        "level": "WARN",
        "instanceName": instance.get("InstanceName") or iid,
        "regionId": region,
        "groupId": "0",
        "name": "Instance:PreemptibleInstanceInterruption",
        "time": int(time.time() * 1000),
        "content": {"instanceId": iid, "action": "delete"},
        "status": "Normal",
    }


def system_event(instance: dict[str, Any], event: str, status: str, not_before: float) -> dict[str, Any]:
    iid = instance["InstanceId"]
    region = instance.get("RegionId") or credentials.REGION_ID
    nb = dt.datetime.fromtimestamp(not_before, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": str(uuid.uuid4()).upper(),
        "eventTime": _compact_now(),
        "level": "CRITICAL",
        "name": f"Instance:{event}:{status}",
        "product": "ECS",
        "regionId": region,
        "resourceId": _arn(region, iid),
        "userId": ACCOUNT_UID,
        "ver": "1.0",
        "content": {
            "eventId": "e-" + secrets.token_hex(8),
            "publishTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "notBefore": nb,
            "instanceId": iid,
            "eventType": event,
            "eventStatus": status,
        },
    }


class EventFeed:
    """What CloudMonitor puts on the queue: a mixin of MnsEmulator (which has `send`, `clock`, `stack`,
    `event_encoding` and `event_shape`)."""

    def send_event(self, event: dict[str, Any], encoding: str | None = None, queue: str | None = None) -> str:
        return self.send(encode_body(event, encoding or self.event_encoding), queue)

    def on_ecs_state_change(self, instance: dict[str, Any], old: str | None, new: str | None) -> None:
        """ECS emulator hook: CloudMonitor publishes an Instance:StateChange event for every transition."""
        state = new if new not in (None, "Released", "Deleted") else "Deleted"
        self.send_event(state_change_event(instance, state, shape=self.event_shape))

    def inject_interruption(self, instance_id: str) -> str:
        """A preemptible-instance interruption (action delete), as sent ~5 minutes before release."""
        return self.send_event(interruption_event(self._instance(instance_id)), encoding="base64")

    def inject_system_event(
        self,
        instance_id: str,
        event: str = "SystemMaintenance.Reboot",
        status: str = "Scheduled",
        not_before: float | None = None,
    ) -> str:
        when = not_before if not_before is not None else self.clock.time() + 3 * 86400
        return self.send_event(system_event(self._instance(instance_id), event, status, when))

    def _instance(self, instance_id: str) -> dict[str, Any]:
        ecs = getattr(self.stack, "emulators", {}).get("ecs") if self.stack is not None else None
        found = getattr(ecs, "instances", {}).get(instance_id) if ecs is not None else None
        if found:
            return dict(found)
        return {"InstanceId": instance_id, "RegionId": credentials.REGION_ID, "InstanceName": instance_id}


# Console: `inject …` puts events on the sandbox's MNS queue ------------------------------------------

INJECT_USAGE = (
    "inject interruption|maintenance|crash INSTANCE  /  inject poison [TEXT]  /  inject event JSON\n"
    "                            ECS events onto the MNS queue (crash = the instance stops unexpectedly)"
)


def _find_instance(console, ref: str) -> str | None:
    ecs = console.bot.stack.emulators.get("ecs")
    instances = getattr(ecs, "instances", {}) if ecs is not None else {}
    if ref in instances:
        return ref
    for iid, inst in instances.items():
        if inst.get("InstanceName") == ref:
            return iid
    return ref if ref.startswith("i-") else None


@console_command("inject", INJECT_USAGE)
def _inject(console, rest: str) -> bool:
    emu = console.bot.stack.emulators.get("mns")
    if emu is None:
        return console._bad("the MNS emulator is not running")
    kind, _, arg = rest.partition(" ")
    kind, arg = kind.lower(), arg.strip()
    console._expect_from = len(console.shown_text)
    if kind == "event":
        try:
            event = json.loads(arg)
        except ValueError:
            return console._bad('usage: inject event {"name": "Instance:StateChange", ...}')
        emu.send_event(event)
        console.say("(event put on the MNS queue)")
        return True
    if kind == "poison":
        emu.send(arg or "this is not an ECS event")
        console.say("(an unreadable message was put on the MNS queue)")
        return True
    if kind not in ("interruption", "maintenance", "crash") or not arg:
        return console._bad("usage: " + INJECT_USAGE)
    iid = _find_instance(console, arg.split()[0])
    if iid is None:
        return console._bad(f"no instance {arg!r} (give an id or a name)")
    if kind == "crash":
        ecs = console.bot.stack.emulators.get("ecs")
        if ecs is None or iid not in ecs.instances:
            return console._bad(f"no ECS instance {iid}")
        ecs.set_status(iid, "Stopped")  # the ECS emulator publishes the state change to MNS
        console.say(f"({iid} stopped unexpectedly)")
    elif kind == "interruption":
        emu.inject_interruption(iid)
        console.say(f"(preemptible interruption of {iid} put on the MNS queue)")
    else:
        emu.inject_system_event(iid)
        console.say(f"(SystemMaintenance.Reboot:Scheduled for {iid} put on the MNS queue)")
    return True
