"""Incident changes in the PagerDuty emulator, as PagerDuty makes them: status, reassignment to a user or
to another escalation policy, escalation to a level, priority, urgency, notes and snoozes.

Each change appends to the incident's log and, where V3 has an event type for it, emits the webhook
(sandbox/pagerduty_timeline.py). Rules kept from PagerDuty: only an acknowledged incident can be
snoozed (400 otherwise); a snooze ends by the incident triggering again (`incident.unacknowledged`);
reassigning, escalating, acknowledging again or resolving cancels it; escalating an acknowledged
incident triggers it again (its `incident.escalated` says so), and a low-urgency one cannot be
escalated; notes are at most 25,000 characters.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

from sandbox.pagerduty_timeline import LOG_TYPE, log_entry, note_data, occurred_stamp, v2_message, v3_event
from sandbox.pagerduty_world import iso, now

NOTE_MAX_CHARS = 25_000
MAX_SNOOZE_SECONDS = 7 * 86400
_UNCHANGED = object()


class ChangeRefused(ValueError):
    """The change is not one PagerDuty would make (answered 400 Invalid Input Provided)."""


class IncidentChanges:
    """Mixed into the emulator (which holds `incidents`, `notes`, the world and `webhooks`)."""

    incidents: dict[str, dict[str, Any]]
    notes: dict[str, list[dict[str, Any]]]

    # PUT /incidents/{id} ---------------------------------------------------------------------------
    def apply_changes(self, inc: dict[str, Any], changes: dict[str, Any], agent: dict[str, Any]) -> None:
        """Validate every field first, then change: a refused request changes nothing."""
        status = changes.get("status")
        if status is not None and status not in ("triggered", "acknowledged", "resolved"):
            raise ChangeRefused(f"unknown status {status!r}")
        assignees = None
        if "assignments" in changes:
            assignees = [
                str(((a or {}).get("assignee") or {}).get("id")) for a in changes["assignments"] or []
            ]
            if not assignees or any(u not in self.users for u in assignees):
                raise ChangeRefused("Assignee not found")
        policy = None
        if changes.get("escalation_policy") is not None:
            policy = str((changes["escalation_policy"] or {}).get("id"))
            if policy not in self.escalation_policies:
                raise ChangeRefused("Escalation policy not found")
        level = changes.get("escalation_level")
        if level is not None:
            top = self.levels(policy or inc["escalation_policy"])
            if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= top:
                raise ChangeRefused(f"Escalation level must be between 1 and {top}")
        priority: Any = _UNCHANGED
        if "priority" in changes:
            priority = (
                (changes["priority"] or {}).get("id") if isinstance(changes["priority"], dict) else None
            )
            if priority is not None and priority not in self.priorities:
                raise ChangeRefused("Priority not found")
        urgency = changes.get("urgency")
        if urgency is not None and urgency not in ("high", "low"):
            raise ChangeRefused("Urgency must be high or low")
        if level is not None and level != inc["escalation_level"] and (urgency or inc["urgency"]) == "low":
            raise ChangeRefused("low-urgency incidents cannot be reassigned to an escalation level")
        if status is not None and status != inc["status"]:
            self._set_status(inc, status, agent)
        if assignees is not None and assignees != inc["assignees"]:
            self._assign(inc, assignees, agent)
        if policy is not None and policy != inc["escalation_policy"]:
            self._delegate(inc, policy, agent)
        if level is not None and level != inc["escalation_level"]:
            self._escalate(inc, level, agent)
        if priority is not _UNCHANGED and priority != inc["priority"]:
            inc["priority"] = priority
            name = self.priorities[priority]["name"] if priority else "none"
            self._record(inc, "incident.priority_updated", agent, f"Priority changed to {name}")
        if urgency is not None and urgency != inc["urgency"]:
            inc["urgency"] = urgency
            self._log_only(inc, "urgency_change_log_entry", agent, f"Urgency changed to {urgency}")
        if changes.get("title"):
            inc["title"] = str(changes["title"])[:1024]
        inc["updated_at"] = iso(now())

    def _set_status(self, inc: dict[str, Any], status: str, agent: dict[str, Any] | None) -> None:
        old = inc["status"]
        inc["status"] = status
        inc["status_changed_at"] = iso(now())
        inc["pending_actions"] = []  # a snooze (or an acknowledgement timeout) ends with the status
        who = agent["name"] if agent else "timeout"
        if status == "acknowledged":
            inc["acknowledgements"] = [(agent["id"], iso(now()))] if agent else []
        else:
            inc["acknowledgements"] = []
        if old == "resolved":
            self._record(inc, "incident.reopened", agent, f"Reopened by {who}")
            if status == "acknowledged":
                self._record(inc, "incident.acknowledged", agent, f"Acknowledged by {who}")
        elif status == "triggered":
            self._record(inc, "incident.unacknowledged", agent, f"Unacknowledged due to {who}")
        else:
            self._record(inc, f"incident.{status}", agent, f"{status.capitalize()} by {who}")

    def _assign(self, inc: dict[str, Any], users: list[str], agent: dict[str, Any]) -> None:
        inc["assignees"] = users
        inc["pending_actions"] = []  # reassigning cancels a snooze
        names = ", ".join(self.users[u]["name"] for u in users)
        self._record(inc, "incident.reassigned", agent, f"Assigned to {names} by {agent['name']}")
        self._notify(inc, users)

    def _delegate(self, inc: dict[str, Any], policy: str, agent: dict[str, Any]) -> None:
        inc["escalation_policy"] = policy
        inc["escalation_level"] = 1
        inc["assignees"] = self.on_call_at(policy, 1)
        inc["pending_actions"] = []
        name = self.escalation_policies[policy]["name"]
        self._record(inc, "incident.delegated", agent, f"Reassigned to {name} by {agent['name']}")
        self._notify(inc, inc["assignees"])

    def _escalate(self, inc: dict[str, Any], level: int, agent: dict[str, Any]) -> None:
        inc["escalation_level"] = level
        inc["assignees"] = self.on_call_at(inc["escalation_policy"], level)
        if inc["status"] == "acknowledged":  # the new level is paged: it must acknowledge again
            inc["status"] = "triggered"
            inc["status_changed_at"] = iso(now())
            inc["acknowledgements"] = []
        inc["pending_actions"] = []  # escalating ends a snooze
        names = ", ".join(self.users[u]["name"] for u in inc["assignees"]) or "nobody"
        summary = f"Escalated to level {level} ({names}) by {agent['name']}"
        self._record(inc, "incident.escalated", agent, summary)
        self._notify(inc, inc["assignees"])

    # POST /incidents/{id}/snooze and /notes --------------------------------------------------------
    def snooze(self, inc: dict[str, Any], seconds: Any, agent: dict[str, Any]) -> None:
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 < seconds <= MAX_SNOOZE_SECONDS:
            raise ChangeRefused("duration must be a number of seconds between 1 and 604800")
        if inc["status"] != "acknowledged":
            raise ChangeRefused("Incident must be acknowledged before it can be snoozed")
        until = now() + dt.timedelta(seconds=seconds)
        inc["pending_actions"] = [{"type": "unacknowledge", "at": iso(until)}]
        inc["updated_at"] = iso(now())
        hours = f"{seconds / 3600:g} hour" + ("" if seconds == 3600 else "s")
        self._log_only(inc, "snooze_log_entry", agent, f"Snoozed for {hours} by {agent['name']}")

    def end_snooze(self, incident_id: str) -> bool:
        """The snooze of an incident runs out now (a test's stand-in for waiting): it triggers again."""
        with self._lock:
            inc = self.incidents[incident_id]
            if not any(a["type"] == "unacknowledge" for a in inc["pending_actions"]):
                return False
            self._set_status(inc, "triggered", None)
            return True

    def expire_snoozes(self) -> None:
        """Snoozes whose time has come end (checked on every request)."""
        stamp = iso(now())
        for inc in self.incidents.values():
            due = [a for a in inc["pending_actions"] if a["type"] == "unacknowledge" and a["at"] <= stamp]
            if due and inc["status"] == "acknowledged":
                self._set_status(inc, "triggered", None)

    def add_note(self, inc: dict[str, Any], content: Any, agent: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(content, str) or not content.strip():
            raise ChangeRefused("Note content is required")
        if len(content) > NOTE_MAX_CHARS:
            raise ChangeRefused(f"Note content is too long (at most {NOTE_MAX_CHARS} characters)")
        note = {
            "id": "N" + secrets.token_hex(5).upper(),
            "type": "incident_note",
            "content": content,
            "created_at": iso(now()),
            "user": {k: v for k, v in agent.items() if k in ("id", "summary", "html_url")}
            | {"type": "user_reference"},
            "channel": {"summary": "The PagerDuty website or APIs"},
        }
        self.notes.setdefault(inc["id"], []).append(note)
        self._record(inc, "incident.annotated", agent, note["content"][:120], note=note)
        return note

    # the timeline ----------------------------------------------------------------------------------
    def _notify(self, inc: dict[str, Any], users: list[str]) -> None:
        for user_id in users:
            user = self.users[user_id]
            summary = f"Notified {user['name']} by push notification"
            entry = log_entry("notify_log_entry", inc, None, summary, occurred_stamp(now()))
            entry["channel"] = {"type": "push_notification", "summary": summary}
            inc["log"].append(entry)

    def _log_only(self, inc: dict[str, Any], kind: str, agent: dict[str, Any] | None, summary: str) -> None:
        inc["log"].append(log_entry(kind, inc, agent, summary, occurred_stamp(now())))

    def _record(
        self,
        inc: dict[str, Any],
        event_type: str,
        agent: dict[str, Any] | None,
        summary: str,
        note: dict[str, Any] | None = None,
    ) -> None:
        at = occurred_stamp(now())
        channel = {"type": "note", "summary": note["content"]} if note else None
        entry = log_entry(LOG_TYPE[event_type], inc, agent, summary, at, channel)
        inc["log"].append(entry)
        data = note_data(inc, note) if note is not None else self.incident_v3(inc)
        v3 = v3_event(event_type, data, agent, at)
        v2 = v2_message(event_type, self.incident_rest(inc), entry, note, at)
        self.webhooks.emit(json.loads(json.dumps(v3)), v2)
