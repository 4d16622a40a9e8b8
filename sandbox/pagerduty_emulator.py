"""PagerDuty REST API v2 emulator (HTTPS with a self-signed certificate made at start: the `pagerduty`
client refuses plain http) that POSTs signed webhooks to the bot on every incident change.

REST: incidents create / get / list / update / bulk update (with `incident_key` semantics: 400 while an
open incident on the same service has the key), snooze, notes, log entries, priorities, users,
services, escalation policies (with their levels), schedules, on-calls; `Authorization: Token token=…`
checked, `From` required on writes, classic pagination (limit ≤ 100, offset + limit ≤ 10 000),
PagerDuty's error envelope and X-Request-Id. How changes behave and what they emit:
`sandbox/pagerduty_changes.py`; the account's contents: `sandbox/pagerduty_world.py`.
Knobs: `fail_next(status, count)` answers the next requests with 429 / 5xx; `end_snooze(id)` ends a
snooze now. Webhooks: see `sandbox/pagerduty_webhooks.py` (`emulator.webhooks` holds the knobs).
The sandbox also gets a sample calendar (CALENDAR_ICS_URLS) whose planned work starts
`SANDBOX_PLANNED_WORK_DELAY` seconds (default 180) after launch.
"""

from __future__ import annotations

import datetime as dt
import itertools
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
from sandbox.pagerduty_changes import ChangeRefused, IncidentChanges
from sandbox.pagerduty_webhooks import WebhookSender
from sandbox.pagerduty_world import SERVICE_ID, PagerDutyWorld, iso, now, ref

ITERATION_LIMIT = 10_000


class PagerDutyEmulator(IncidentChanges, PagerDutyWorld, Emulator):
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
        self.incidents: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.calendar_file: Path | None = None
        self._calendar_dirs: list[Path] = []
        self.webhooks = WebhookSender(
            lambda: getattr(self.stack, "bot_url", None),
            webhook_secrets or [credentials.PAGERDUTY_WEBHOOK_SECRET],
        )
        self._seed_world()

    def fail_next(self, status: int = 429, count: int = 1) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def write_sample_calendar(self, delay_seconds: float | None = None) -> Path:
        from sandbox.pagerduty_calendar import sample_calendar

        delay = self.planned_work_delay if delay_seconds is None else delay_seconds
        directory = Path(tempfile.mkdtemp(prefix="chatops-calendar-"))
        self._calendar_dirs.append(directory)  # removed by stop()
        path = directory / "planned-work.ics"
        path.write_text(sample_calendar(now() + dt.timedelta(seconds=delay)))
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
            self.expire_snoozes()
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

    def _refused(self, why: str):
        return self._fail(400, "Invalid Input Provided", 2001, [why])

    def _route(self, req: Request, q: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        parts = req.path.strip("/").split("/")
        m = req.method
        if parts == ["incidents"]:
            if m == "POST":
                return self._create(req, body)
            if m == "GET":
                return self._list_incidents(q)
            if m == "PUT":
                return self._bulk_update(req, body)
        if parts[0] == "incidents" and len(parts) in (2, 3):
            inc = self.incidents.get(parts[1])
            if inc is None:
                return self._fail(404, "Not Found", 2100, [f"incident {parts[1]} not found"])
            found = self._incident_route(req, inc, parts[2] if len(parts) == 3 else "", q, body)
            if found is not None:
                return found
        if m == "GET":
            found = self._directory_route(parts, q)
            if found is not None:
                return found
        return self._fail(404, "Not Found", 2100, [f"{m} {req.path} is not emulated"])

    def _incident_route(
        self, req: Request, inc: dict[str, Any], sub: str, q: dict[str, list[str]], body: Any
    ) -> tuple[int, Any] | None:
        m = req.method
        if sub == "" and m == "GET":
            return 200, {"incident": self.incident_rest(inc)}
        if sub == "log_entries" and m == "GET":
            entries = list(reversed(inc["log"]))  # newest first
            if (q.get("is_overview") or ["false"])[0] == "true":
                entries = [e for e in entries if e["type"] != "notify_log_entry"]
            return self._page("log_entries", entries, q)
        if sub == "notes" and m == "GET":
            return 200, {"notes": list(self.notes.get(inc["id"], []))}
        if (sub, m) not in (("", "PUT"), ("notes", "POST"), ("snooze", "POST")):
            return None
        requester = self._requester(req)
        if requester is None:
            return self._refused("Requester User Not Found")
        try:
            if sub == "notes":
                note_in = (body or {}).get("note") if isinstance(body, dict) else None
                return 201, {"note": self.add_note(inc, (note_in or {}).get("content"), requester)}
            if sub == "snooze":
                self.snooze(inc, (body or {}).get("duration") if isinstance(body, dict) else None, requester)
                return 201, {"incident": self.incident_rest(inc)}
            changes = (body or {}).get("incident") if isinstance(body, dict) else None
            if not isinstance(changes, dict) or changes.get("type") not in ("incident", "incident_reference"):
                return self._refused("incident type must be incident_reference")
            self.apply_changes(inc, changes, requester)
        except ChangeRefused as exc:
            return self._refused(str(exc))
        return 200, {"incident": self.incident_rest(inc)}

    def _directory_route(self, parts: list[str], q: dict[str, list[str]]) -> tuple[int, Any] | None:
        tables = {
            "users": self.users,
            "services": self.services,
            "escalation_policies": self.escalation_policies,
            "schedules": self.schedules,
            "priorities": self.priorities,
        }
        if len(parts) == 1 and parts[0] in tables:
            query = (q.get("query") or [""])[0].lower()
            found = [
                dict(v)
                for v in tables[parts[0]].values()
                if not query
                or any(query in str(v.get(f) or "").lower() for f in ("name", "email", "summary"))
            ]
            return self._page(parts[0], found, q)
        if len(parts) == 2 and parts[0] in ("users", "services", "escalation_policies"):
            item = tables[parts[0]].get(parts[1])
            if item is None:
                return self._fail(404, "Not Found", 2100)
            if parts[0] == "escalation_policies":
                return 200, {"escalation_policy": self.escalation_policy_rest(parts[1])}
            return 200, {parts[0][:-1]: dict(item)}
        if parts == ["oncalls"]:
            return self._oncalls(q)
        return None

    def _page(self, wrapper: str, items: list[dict[str, Any]], q: dict[str, list[str]]) -> tuple[int, Any]:
        try:
            limit = min(int((q.get("limit") or ["25"])[0]), 100)
            offset = int((q.get("offset") or ["0"])[0])
        except ValueError:
            return self._refused("limit and offset must be integers")
        if limit < 1 or offset < 0 or offset + limit > ITERATION_LIMIT:
            return self._refused("offset + limit must not exceed 10000")
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
            return self._refused("Requester User Not Found")
        inc_in = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(inc_in, dict) or inc_in.get("type") != "incident" or not inc_in.get("title"):
            return self._refused("Incident type and title are required")
        svc_id = (inc_in.get("service") or {}).get("id")
        service = self.services.get(svc_id or "")
        if service is None:
            return self._refused("Service not found")
        key = inc_in.get("incident_key")
        if key and any(
            i["incident_key"] == key and i["service"] == svc_id and i["status"] != "resolved"
            for i in self.incidents.values()
        ):
            return self._refused("Open incident with matching dedup key already exists on this service")
        urgency = inc_in.get("urgency") or "high"
        if urgency not in ("high", "low"):
            return self._refused("Urgency must be high or low")
        number = next(self._numbers)
        inc_id = "Q" + secrets.token_hex(6).upper()
        ep = service["escalation_policy"]
        details = (
            ((inc_in.get("body") or {}).get("details")) if isinstance(inc_in.get("body"), dict) else None
        )
        stamp = iso(now())
        inc = {
            "id": inc_id,
            "number": number,
            "title": str(inc_in["title"])[:1024],
            "status": "triggered",
            "incident_key": key or uuid.uuid4().hex,
            "service": svc_id,
            "urgency": urgency,
            "assignees": self.on_call_at(ep, 1),
            "escalation_policy": ep,
            "escalation_level": 1,
            "priority": None,
            "created_at": stamp,
            "updated_at": stamp,
            "status_changed_at": stamp,
            "acknowledgements": [],
            "pending_actions": [],
            "log": [],
            "details": details,
        }
        self.incidents[inc_id] = inc
        self._record(inc, "incident.triggered", requester, "Triggered through the API")
        self._notify(inc, inc["assignees"])
        return 201, {"incident": self.incident_rest(inc)}

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
        return self._page("incidents", [self.incident_rest(i) for i in items], q)

    def _bulk_update(self, req: Request, body: Any) -> tuple[int, Any]:
        requester = self._requester(req)
        if requester is None:
            return self._refused("Requester User Not Found")
        items = body.get("incidents") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return self._refused("incidents must be a list")
        if len(items) > 250:
            return self._fail(413, "Request Entity Too Large", 2001, ["at most 250 incidents per request"])
        out = []
        for item in items:
            inc = self.incidents.get(str((item or {}).get("id")))
            if inc is None:
                return self._fail(404, "Not Found", 2100, [f"incident {item!r} not found"])
            try:
                self.apply_changes(inc, item, requester)
            except ChangeRefused as exc:
                return self._refused(str(exc))
            out.append(self.incident_rest(inc))
        return 200, {"incidents": out}

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
                    "user": ref("user", self.users[e["user"]], "users"),
                    "escalation_policy": ref(
                        "escalation_policy", self.escalation_policies[e["ep"]], "escalation_policies"
                    ),
                    "escalation_level": e["level"],
                    "schedule": ref("schedule", self.schedules[e["schedule"]], "schedules")
                    if e["schedule"]
                    else None,
                    "start": iso(e["start"]) if e["start"] else None,
                    "end": iso(e["end"]) if e["end"] else None,
                }
            )
        return self._page("oncalls", out, q)


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
