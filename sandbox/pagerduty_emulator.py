"""PagerDuty REST API v2 emulator (HTTPS with a self-signed certificate made at start: the `pagerduty`
client refuses plain http) that POSTs signed webhooks to the bot on every incident change.

REST: incidents create / get / list / update / bulk update (with `incident_key` semantics: 400 while an
open incident on the same service has the key), notes, users, services, escalation policies,
schedules, on-calls; `Authorization: Token token=…` checked, `From` required on writes, classic
pagination (limit ≤ 100, offset + limit ≤ 10 000), PagerDuty's error envelope and X-Request-Id.
Knob: `fail_next(status, count)` answers the next requests with 429 / 5xx.
Webhooks: see `sandbox/pagerduty_webhooks.py` (`emulator.webhooks` holds the knobs).
The sandbox also gets a sample calendar (CALENDAR_ICS_URLS) whose planned work starts
`SANDBOX_PLANNED_WORK_DELAY` seconds (default 180) after launch.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import secrets
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox import credentials
from sandbox.emulator import Emulator, EmulatorSpec, Request, Response, register_emulator
from sandbox.pagerduty_webhooks import WebhookSender

HTML = "https://sandbox.pagerduty.test"
SERVICE_ID = "PSVC001"
ITERATION_LIMIT = 10_000


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ref(kind: str, obj: dict[str, Any], path: str) -> dict[str, Any]:
    return {
        "id": obj["id"],
        "type": f"{kind}_reference",
        "summary": obj.get("summary") or obj.get("name"),
        "self": f"https://api.pagerduty.test/{path}/{obj['id']}",
        "html_url": f"{HTML}/{path}/{obj['id']}",
    }


class PagerDutyEmulator(Emulator):
    name = "pagerduty"

    def __init__(
        self,
        stack: Any = None,
        api_key: str = credentials.PAGERDUTY_API_KEY,
        webhook_secrets: list[str] | None = None,
        planned_work_delay: float = 180.0,
    ):
        super().__init__(tls=True)
        self.stack = stack
        self.api_key = api_key
        self.planned_work_delay = planned_work_delay
        self._lock = threading.RLock()
        self._numbers = itertools.count(1)
        self._failures: list[int] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.services: dict[str, dict[str, Any]] = {}
        self.escalation_policies: dict[str, dict[str, Any]] = {}
        self.schedules: dict[str, dict[str, Any]] = {}
        self.oncall_entries: list[dict[str, Any]] = []
        self.incidents: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.calendar_file: Path | None = None
        self._calendar_dirs: list[Path] = []
        self.webhooks = WebhookSender(
            lambda: getattr(self.stack, "bot_url", None),
            webhook_secrets or [credentials.PAGERDUTY_WEBHOOK_SECRET],
        )
        self._seed()

    # world ---------------------------------------------------------------------------------------
    def _seed(self) -> None:
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
        now = _now().replace(minute=0, second=0, microsecond=0)
        self.oncall_entries = [
            {
                "user": "PALICE",
                "ep": "PEP001",
                "level": 1,
                "schedule": "PSCH001",
                "start": now - dt.timedelta(hours=6),
                "end": now + dt.timedelta(hours=18),
            },
            {"user": "PBOB", "ep": "PEP001", "level": 2, "schedule": None, "start": None, "end": None},
            {
                "user": "PCAROL",
                "ep": "PEP002",
                "level": 1,
                "schedule": "PSCH002",
                "start": now - dt.timedelta(hours=2),
                "end": now + dt.timedelta(days=7),
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
        with self._lock:
            self.users[user_id] = user
        return user

    def fail_next(self, status: int = 429, count: int = 1) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def write_sample_calendar(self, delay_seconds: float | None = None) -> Path:
        from sandbox.pagerduty_calendar import sample_calendar

        delay = self.planned_work_delay if delay_seconds is None else delay_seconds
        directory = Path(tempfile.mkdtemp(prefix="chatops-calendar-"))
        self._calendar_dirs.append(directory)  # removed by stop()
        path = directory / "planned-work.ics"
        path.write_text(sample_calendar(_now() + dt.timedelta(seconds=delay)))
        self.calendar_file = path
        return path

    def start(self) -> PagerDutyEmulator:
        super().start()
        if self.calendar_file is None:
            self.write_sample_calendar()
        return self

    def before_stop(self) -> None:
        self.webhooks.stop()

    def stop(self) -> None:
        super().stop()
        for directory in self._calendar_dirs:
            if self.calendar_file is not None and self.calendar_file.parent == directory:
                self.calendar_file = None  # a later start() writes a fresh one
            shutil.rmtree(directory, ignore_errors=True)
        self._calendar_dirs.clear()

    # helpers for tests -------------------------------------------------------------------------------
    def incident_by_title(self, title: str) -> list[dict[str, Any]]:
        with self._lock:
            return [i for i in self.incidents.values() if i["title"] == title]

    # HTTP ------------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        name = f"{req.method} {self._canonical(req.path)}"
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            resp = self._error(failure, "Rate Limit Exceeded" if failure == 429 else "Server error", 2020)
            self.record(name, req, failure)
            return resp
        if req.headers.get("authorization") != f"Token token={self.api_key}":
            resp = self._error(401, "Authentication failed", 2006)
            self.record(name, req, 401)
            return resp
        query = parse_qs(urlsplit(req.raw_path).query, keep_blank_values=True)
        try:
            body = req.json() if req.body else None
        except ValueError:
            body = None
            if req.method in ("POST", "PUT"):
                self.record(name, req, 400)
                return self._error(400, "Invalid Input Provided", 2001, ["body is not JSON"])
        with self._lock:
            status, out = self._route(req, query, body)
        self.record(name, req, status, out)
        return Response.json(out, status, {"X-Request-Id": secrets.token_hex(8)})

    @staticmethod
    def _canonical(path: str) -> str:
        parts = path.strip("/").split("/")
        return "/" + "/".join("{id}" if i % 2 == 1 else p for i, p in enumerate(parts))

    @staticmethod
    def _error(status: int, message: str, code: int, errors: list[str] | None = None) -> Response:
        return Response.json(
            {"error": {"message": message, "code": code, "errors": errors or []}},
            status,
            {"X-Request-Id": secrets.token_hex(8)},
        )

    def _fail(self, status: int, message: str, code: int, errors: list[str] | None = None):
        return status, {"error": {"message": message, "code": code, "errors": errors or []}}

    def _route(self, req: Request, q: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        parts = req.path.strip("/").split("/")
        m = req.method
        if parts == ["incidents"] and m == "POST":
            return self._create(req, body)
        if parts == ["incidents"] and m == "GET":
            return self._list_incidents(q)
        if parts == ["incidents"] and m == "PUT":
            return self._bulk_update(req, body)
        if len(parts) == 2 and parts[0] == "incidents":
            inc = self.incidents.get(parts[1])
            if inc is None:
                return self._fail(404, "Not Found", 2100)
            if m == "GET":
                return 200, {"incident": self._rest(inc)}
            if m == "PUT":
                return self._update(
                    req, inc, (body or {}).get("incident") if isinstance(body, dict) else None
                )
        if len(parts) == 3 and parts[0] == "incidents" and parts[2] == "notes":
            inc = self.incidents.get(parts[1])
            if inc is None:
                return self._fail(404, "Not Found", 2100)
            if m == "GET":
                notes = self.notes.get(inc["id"], [])
                return 200, {"notes": notes}
            if m == "POST":
                return self._add_note(req, inc, body)
        if (
            m == "GET"
            and len(parts) == 1
            and parts[0] in ("users", "services", "escalation_policies", "schedules")
        ):
            items = {
                "users": self.users,
                "services": self.services,
                "escalation_policies": self.escalation_policies,
                "schedules": self.schedules,
            }[parts[0]]
            query = (q.get("query") or [""])[0].lower()
            found = [
                dict(v)
                for v in items.values()
                if not query
                or any(query in str(v.get(f) or "").lower() for f in ("name", "email", "summary"))
            ]
            return self._page(parts[0], found, q)
        if m == "GET" and len(parts) == 2 and parts[0] in ("users", "services"):
            items = self.users if parts[0] == "users" else self.services
            item = items.get(parts[1])
            if item is None:
                return self._fail(404, "Not Found", 2100)
            return 200, {parts[0][:-1]: dict(item)}
        if m == "GET" and parts == ["oncalls"]:
            return self._oncalls(q)
        return self._fail(404, "Not Found", 2100, [f"{m} {req.path} is not emulated"])

    def _page(self, wrapper: str, items: list[dict[str, Any]], q: dict[str, list[str]]) -> tuple[int, Any]:
        try:
            limit = min(int((q.get("limit") or ["25"])[0]), 100)
            offset = int((q.get("offset") or ["0"])[0])
        except ValueError:
            return self._fail(400, "Invalid Input Provided", 2001, ["limit and offset must be integers"])
        if limit < 1 or offset < 0 or offset + limit > ITERATION_LIMIT:
            return self._fail(400, "Invalid Input Provided", 2001, ["offset + limit must not exceed 10000"])
        total = len(items) if (q.get("total") or ["false"])[0] == "true" else None
        chunk = items[offset : offset + limit]
        return 200, {
            wrapper: chunk,
            "limit": limit,
            "offset": offset,
            "more": offset + len(chunk) < len(items),
            "total": total,
        }

    def _requester(self, req: Request) -> dict[str, Any] | None:
        email = (req.headers.get("from") or "").strip().lower()
        for user in self.users.values():
            if user["email"].lower() == email:
                return user
        return None

    # incidents -----------------------------------------------------------------------------------
    def _create(self, req: Request, body: Any) -> tuple[int, Any]:
        requester = self._requester(req)
        if requester is None:
            return self._fail(400, "Invalid Input Provided", 2001, ["Requester User Not Found"])
        inc_in = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(inc_in, dict) or inc_in.get("type") != "incident" or not inc_in.get("title"):
            return self._fail(400, "Invalid Input Provided", 2001, ["Incident type and title are required"])
        svc_id = (inc_in.get("service") or {}).get("id")
        service = self.services.get(svc_id or "")
        if service is None:
            return self._fail(400, "Invalid Input Provided", 2001, ["Service not found"])
        key = inc_in.get("incident_key")
        if key and any(
            i["incident_key"] == key and i["service"] == svc_id and i["status"] != "resolved"
            for i in self.incidents.values()
        ):
            return self._fail(
                400,
                "Invalid Input Provided",
                2001,
                ["Open incident with matching dedup key already exists on this service"],
            )
        urgency = inc_in.get("urgency") or "high"
        if urgency not in ("high", "low"):
            return self._fail(400, "Invalid Input Provided", 2001, ["Urgency must be high or low"])
        number = next(self._numbers)
        inc_id = "Q" + secrets.token_hex(6).upper()
        ep = service["escalation_policy"]
        assignees = [e["user"] for e in self.oncall_entries if e["ep"] == ep and e["level"] == 1][:1]
        details = (
            ((inc_in.get("body") or {}).get("details")) if isinstance(inc_in.get("body"), dict) else None
        )
        now = _iso(_now())
        inc = {
            "id": inc_id,
            "number": number,
            "title": str(inc_in["title"])[:1024],
            "status": "triggered",
            "incident_key": key or uuid.uuid4().hex,
            "service": svc_id,
            "urgency": urgency,
            "assignees": assignees,
            "escalation_policy": ep,
            "escalation_level": 1,
            "priority": None,
            "created_at": now,
            "updated_at": now,
            "details": details,
        }
        self.incidents[inc_id] = inc
        self._changed(inc, "incident.triggered", requester)
        return 201, {"incident": self._rest(inc)}

    def _list_incidents(self, q: dict[str, list[str]]) -> tuple[int, Any]:
        items = list(self.incidents.values())
        if q.get("statuses[]"):
            items = [i for i in items if i["status"] in q["statuses[]"]]
        if q.get("service_ids[]"):
            items = [i for i in items if i["service"] in q["service_ids[]"]]
        if q.get("incident_key"):
            items = [i for i in items if i["incident_key"] == q["incident_key"][0]]
        if q.get("urgencies[]"):
            items = [i for i in items if i["urgency"] in q["urgencies[]"]]
        desc = (q.get("sort_by") or [""])[0].endswith(":desc")
        items.sort(key=lambda i: i["number"], reverse=desc)
        return self._page("incidents", [self._rest(i) for i in items], q)

    def _update(self, req: Request, inc: dict[str, Any], changes: Any) -> tuple[int, Any]:
        requester = self._requester(req)
        if requester is None:
            return self._fail(400, "Invalid Input Provided", 2001, ["Requester User Not Found"])
        if not isinstance(changes, dict) or changes.get("type") not in ("incident", "incident_reference"):
            return self._fail(
                400, "Invalid Input Provided", 2001, ["incident type must be incident_reference"]
            )
        error = self._apply(inc, changes, requester)
        if error:
            return self._fail(400, "Invalid Input Provided", 2001, [error])
        return 200, {"incident": self._rest(inc)}

    def _bulk_update(self, req: Request, body: Any) -> tuple[int, Any]:
        requester = self._requester(req)
        if requester is None:
            return self._fail(400, "Invalid Input Provided", 2001, ["Requester User Not Found"])
        items = body.get("incidents") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return self._fail(400, "Invalid Input Provided", 2001, ["incidents must be a list"])
        if len(items) > 250:
            return self._fail(413, "Request Entity Too Large", 2001, ["at most 250 incidents per request"])
        out = []
        for item in items:
            inc = self.incidents.get(str((item or {}).get("id")))
            if inc is None:
                return self._fail(404, "Not Found", 2100, [f"incident {item!r} not found"])
            error = self._apply(inc, item, requester)
            if error:
                return self._fail(400, "Invalid Input Provided", 2001, [error])
            out.append(self._rest(inc))
        return 200, {"incidents": out}

    def _apply(self, inc: dict[str, Any], changes: dict[str, Any], requester: dict[str, Any]) -> str | None:
        events: list[str] = []
        status = changes.get("status")
        if status is not None:
            if status not in ("triggered", "acknowledged", "resolved"):
                return f"unknown status {status!r}"
            old = inc["status"]
            if status != old:
                inc["status"] = status
                if old == "resolved":
                    events.append("incident.reopened")
                    if status == "acknowledged":
                        events.append("incident.acknowledged")
                elif status == "triggered":
                    events.append("incident.unacknowledged")
                else:
                    events.append(f"incident.{status}")
        if "assignments" in changes:
            users = [str(((a or {}).get("assignee") or {}).get("id")) for a in changes["assignments"] or []]
            if any(u not in self.users for u in users):
                return "assignee not found"
            if users != inc["assignees"]:
                inc["assignees"] = users
                events.append("incident.reassigned")
        if changes.get("escalation_level") not in (None, inc["escalation_level"]):
            inc["escalation_level"] = int(changes["escalation_level"])
            events.append("incident.escalated")
        if "priority" in changes:
            prio = (changes["priority"] or {}).get("id") if isinstance(changes["priority"], dict) else None
            if prio != inc["priority"]:
                inc["priority"] = prio
                events.append("incident.priority_updated")
        if changes.get("urgency") in ("high", "low"):
            inc["urgency"] = changes["urgency"]
        if changes.get("title"):
            inc["title"] = str(changes["title"])[:1024]
        inc["updated_at"] = _iso(_now())
        for event_type in events:
            self._changed(inc, event_type, requester)
        return None

    def _add_note(self, req: Request, inc: dict[str, Any], body: Any) -> tuple[int, Any]:
        requester = self._requester(req)
        if requester is None:
            return self._fail(400, "Invalid Input Provided", 2001, ["Requester User Not Found"])
        content = ((body or {}).get("note") or {}).get("content") if isinstance(body, dict) else None
        if not content:
            return self._fail(400, "Invalid Input Provided", 2001, ["note content is required"])
        note = {
            "id": "N" + secrets.token_hex(5).upper(),
            "type": "incident_note",
            "content": content,
            "created_at": _iso(_now()),
            "user": _ref("user", requester, "users"),
        }
        self.notes.setdefault(inc["id"], []).append(note)
        self._changed(inc, "incident.annotated", requester, note=note)
        return 201, {"note": note}

    def _oncalls(self, q: dict[str, list[str]]) -> tuple[int, Any]:
        entries = self.oncall_entries
        if q.get("escalation_policy_ids[]"):
            entries = [e for e in entries if e["ep"] in q["escalation_policy_ids[]"]]
        if q.get("schedule_ids[]"):
            entries = [e for e in entries if e["schedule"] in q["schedule_ids[]"]]
        out = []
        for e in entries:
            out.append(
                {
                    "user": _ref("user", self.users[e["user"]], "users"),
                    "escalation_policy": _ref(
                        "escalation_policy", self.escalation_policies[e["ep"]], "escalation_policies"
                    ),
                    "escalation_level": e["level"],
                    "schedule": _ref("schedule", self.schedules[e["schedule"]], "schedules")
                    if e["schedule"]
                    else None,
                    "start": _iso(e["start"]) if e["start"] else None,
                    "end": _iso(e["end"]) if e["end"] else None,
                }
            )
        return self._page("oncalls", out, q)

    # representations -----------------------------------------------------------------------------
    def _rest(self, inc: dict[str, Any]) -> dict[str, Any]:
        service = self.services[inc["service"]]
        users = [self.users[u] for u in inc["assignees"] if u in self.users]
        return {
            "id": inc["id"],
            "type": "incident",
            "summary": f"[#{inc['number']}] {inc['title']}",
            "self": f"https://api.pagerduty.test/incidents/{inc['id']}",
            "html_url": f"{HTML}/incidents/{inc['id']}",
            "incident_number": inc["number"],
            "title": inc["title"],
            "status": inc["status"],
            "incident_key": inc["incident_key"],
            "created_at": inc["created_at"],
            "last_status_change_at": inc["updated_at"],
            "urgency": inc["urgency"],
            "service": _ref("service", service, "services"),
            "assignments": [{"at": inc["updated_at"], "assignee": _ref("user", u, "users")} for u in users],
            "escalation_policy": _ref(
                "escalation_policy", self.escalation_policies[inc["escalation_policy"]], "escalation_policies"
            ),
            "priority": {"id": inc["priority"], "type": "priority_reference", "summary": inc["priority"]}
            if inc["priority"]
            else None,
            "body": {"type": "incident_body", "details": inc.get("details")},
        }

    def _v3_data(self, inc: dict[str, Any]) -> dict[str, Any]:
        rest = self._rest(inc)
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

    def _changed(
        self, inc: dict[str, Any], event_type: str, agent: dict[str, Any], note: dict[str, Any] | None = None
    ) -> None:
        now = _now()
        occurred = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        agent_ref = _ref("user", agent, "users")
        if note is not None:
            data: dict[str, Any] = {
                "id": note["id"],
                "type": "incident_note",
                "content": note["content"],
                "trigger_type": "manual",
                "incident": {**_ref("incident", {"id": inc["id"], "summary": inc["title"]}, "incidents")},
            }
        else:
            data = self._v3_data(inc)
        v3 = {
            "id": "01" + secrets.token_hex(12).upper(),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": occurred,
            "agent": agent_ref,
            "client": None,
            "data": data,
        }
        legacy = {v: k for k, v in _V2_NAMES.items()}.get(event_type, "incident." + event_type.split(".")[-1])
        rest = self._rest(inc)
        log_entry = {
            "id": "R" + secrets.token_hex(6).upper(),
            "type": legacy.split(".")[-1] + "_log_entry",
            "created_at": occurred,
            "agent": agent_ref,
            "channel": {"type": "note", "summary": note["content"]} if note else {"type": "api"},
        }
        v2 = {
            "id": str(uuid.uuid4()),
            "event": legacy,
            "created_on": occurred,
            "incident": {**rest, "service": {**rest["service"], "name": rest["service"]["summary"]}},
            "webhook": {"type": "webhook_reference"},
            "log_entries": [log_entry],
        }
        self.webhooks.emit(json.loads(json.dumps(v3)), v2)


_V2_NAMES = {
    "incident.trigger": "incident.triggered",
    "incident.acknowledge": "incident.acknowledged",
    "incident.unacknowledge": "incident.unacknowledged",
    "incident.resolve": "incident.resolved",
    "incident.assign": "incident.reassigned",
    "incident.escalate": "incident.escalated",
    "incident.delegate": "incident.delegated",
    "incident.annotate": "incident.annotated",
}


def _factory(stack: Any) -> PagerDutyEmulator:
    delay = float(os.environ.get("SANDBOX_PLANNED_WORK_DELAY", "180"))
    return PagerDutyEmulator(stack=stack, planned_work_delay=delay)


register_emulator(
    EmulatorSpec(
        name="pagerduty",
        factory=_factory,
        settings=lambda emu: {
            "PAGERDUTY_API_URL": emu.base_url,
            "PAGERDUTY_CA_BUNDLE": str(emu.ca_file),
            "PAGERDUTY_API_KEY": emu.api_key,
            "PAGERDUTY_FROM_EMAIL": credentials.PAGERDUTY_FROM_EMAIL,
            "PAGERDUTY_SERVICE_ID": SERVICE_ID,
            "PAGERDUTY_WEBHOOK_SECRETS": ",".join(emu.webhooks.secrets),
            "CALENDAR_ICS_URLS": str(emu.calendar_file),
        },
        order=40,
    )
)
