"""The PagerDuty emulator's account: people, services, escalation policies with their levels, schedules,
on-call entries and incident priorities, and how incidents read in REST answers and V3 webhooks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sandbox import credentials

HTML = "https://sandbox.pagerduty.test"
API = "https://api.pagerduty.test"
SERVICE_ID = "PSVC001"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ref(kind: str, obj: dict[str, Any], path: str) -> dict[str, Any]:
    return {
        "id": obj["id"],
        "type": f"{kind}_reference",
        "summary": obj.get("summary") or obj.get("name"),
        "self": f"{API}/{path}/{obj['id']}",
        "html_url": f"{HTML}/{path}/{obj['id']}",
    }


class PagerDutyWorld:
    """Mixed into the emulator: the account's contents (attributes tests read and change)."""

    users: dict[str, dict[str, Any]]
    services: dict[str, dict[str, Any]]
    escalation_policies: dict[str, dict[str, Any]]
    schedules: dict[str, dict[str, Any]]
    priorities: dict[str, dict[str, Any]]
    oncall_entries: list[dict[str, Any]]

    def _seed_world(self) -> None:
        self.users = {}
        for person in credentials.USERS.values():
            self.add_user(f"P{person['name'].upper()}", person["real_name"], person["email"], person["tz"])
        self.add_user("PBOT001", "ChatOps Bot", credentials.PAGERDUTY_FROM_EMAIL, "UTC")
        self.escalation_policies = {
            "PEP001": {"id": "PEP001", "name": "Ops Escalation", "summary": "Ops Escalation"},
            "PEP002": {"id": "PEP002", "name": "Database Escalation", "summary": "Database Escalation"},
        }
        self.schedules = {
            "PSCH001": {"id": "PSCH001", "name": "Primary Ops", "summary": "Primary Ops"},
            "PSCH002": {"id": "PSCH002", "name": "DB Primary", "summary": "DB Primary"},
        }
        self.services = {
            SERVICE_ID: {"id": SERVICE_ID, "name": "Alibaba Cloud Ops", "escalation_policy": "PEP001"},
            "PSVC002": {"id": "PSVC002", "name": "Database", "escalation_policy": "PEP002"},
        }
        for svc in self.services.values():
            svc["summary"] = svc["name"]
        self.priorities = {
            pid: {
                "id": pid,
                "type": "priority",
                "name": name,
                "summary": name,
                "description": description,
                "self": f"{API}/priorities/{pid}",
                "html_url": None,
            }
            for pid, name, description in (
                ("PPRIO01", "P1", "Critical: customers cannot use the service"),
                ("PPRIO02", "P2", "High: a major part of the service is degraded"),
                ("PPRIO03", "P3", "Moderate: a minor part is degraded"),
                ("PPRIO04", "P4", "Low: no customer impact yet"),
                ("PPRIO05", "P5", "Informational"),
            )
        }
        hour = now().replace(minute=0, second=0, microsecond=0)
        self.oncall_entries = [
            {
                "user": "PALICE",
                "ep": "PEP001",
                "level": 1,
                "schedule": "PSCH001",
                "start": hour - dt.timedelta(hours=6),
                "end": hour + dt.timedelta(hours=18),
            },
            {"user": "PBOB", "ep": "PEP001", "level": 2, "schedule": None, "start": None, "end": None},
            {"user": "PERIN", "ep": "PEP001", "level": 3, "schedule": None, "start": None, "end": None},
            {
                "user": "PCAROL",
                "ep": "PEP002",
                "level": 1,
                "schedule": "PSCH002",
                "start": hour - dt.timedelta(hours=2),
                "end": hour + dt.timedelta(days=7),
            },
            {"user": "PBOB", "ep": "PEP002", "level": 2, "schedule": None, "start": None, "end": None},
        ]

    def add_user(self, user_id: str, name: str, email: str, tz: str = "UTC") -> dict[str, Any]:
        user = {
            "id": user_id,
            "type": "user",
            "name": name,
            "summary": name,
            "email": email,
            "time_zone": tz,
            "html_url": f"{HTML}/users/{user_id}",
        }
        self.users[user_id] = user
        return user

    # escalation levels ---------------------------------------------------------------------------
    def levels(self, policy_id: str) -> int:
        return max((e["level"] for e in self.oncall_entries if e["ep"] == policy_id), default=0)

    def on_call_at(self, policy_id: str, level: int) -> list[str]:
        return [e["user"] for e in self.oncall_entries if e["ep"] == policy_id and e["level"] == level][:1]

    def escalation_policy_rest(self, policy_id: str) -> dict[str, Any]:
        policy = self.escalation_policies[policy_id]
        rules = [
            {
                "id": f"R{policy_id}{level}",
                "escalation_delay_in_minutes": 30,
                "targets": [ref("user", self.users[u], "users") for u in self.on_call_at(policy_id, level)],
            }
            for level in range(1, self.levels(policy_id) + 1)
        ]
        return {
            **ref("escalation_policy", policy, "escalation_policies"),
            "type": "escalation_policy",
            "name": policy["name"],
            "escalation_rules": rules,
            "num_loops": 0,
        }

    # representations -----------------------------------------------------------------------------
    def _priority_ref(self, priority_id: str | None) -> dict[str, Any] | None:
        priority = self.priorities.get(priority_id or "")
        if priority is None:
            return None
        return {**ref("priority", priority, "priorities"), "name": priority["name"]}

    def incident_rest(self, inc: dict[str, Any]) -> dict[str, Any]:
        """The incident as GET /incidents/{id} answers (REST API v2)."""
        service = self.services[inc["service"]]
        users = [self.users[u] for u in inc["assignees"] if u in self.users]
        return {
            "id": inc["id"],
            "type": "incident",
            "summary": f"[#{inc['number']}] {inc['title']}",
            "self": f"{API}/incidents/{inc['id']}",
            "html_url": f"{HTML}/incidents/{inc['id']}",
            "incident_number": inc["number"],
            "title": inc["title"],
            "status": inc["status"],
            "incident_key": inc["incident_key"],
            "created_at": inc["created_at"],
            "updated_at": inc["updated_at"],
            "last_status_change_at": inc["status_changed_at"],
            "urgency": inc["urgency"],
            "service": ref("service", service, "services"),
            "assignments": [{"at": inc["updated_at"], "assignee": ref("user", u, "users")} for u in users],
            "acknowledgements": [
                {"at": at, "acknowledger": ref("user", self.users[u], "users")}
                for u, at in inc["acknowledgements"]
                if u in self.users
            ],
            "pending_actions": list(inc["pending_actions"]),
            "escalation_policy": ref(
                "escalation_policy", self.escalation_policies[inc["escalation_policy"]], "escalation_policies"
            ),
            "priority": self._priority_ref(inc["priority"]),
            "body": {"type": "incident_body", "details": inc.get("details")},
        }

    def incident_v3(self, inc: dict[str, Any]) -> dict[str, Any]:
        """The incident as V3 webhooks carry it (`event.data` of type incident)."""
        rest = self.incident_rest(inc)
        return {
            "id": inc["id"],
            "type": "incident",
            "self": rest["self"],
            "html_url": rest["html_url"],
            "number": inc["number"],
            "status": inc["status"],
            "incident_key": inc["incident_key"],
            "created_at": inc["created_at"],
            "title": inc["title"],
            "service": rest["service"],
            "assignees": [a["assignee"] for a in rest["assignments"]],
            "escalation_policy": rest["escalation_policy"],
            "teams": [],
            "priority": rest["priority"],
            "urgency": inc["urgency"],
            "conference_bridge": None,
            "resolve_reason": None,
            "incident_type": {"name": "incident_default"},
        }
