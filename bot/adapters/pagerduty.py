"""PagerDuty REST API v2 through the `pagerduty` package (PagerDuty's maintained successor of pdpyras:
the same rget / rpost / rput / iter_all calls, on httpx2).

Base URL and CA bundle come from the settings (`PAGERDUTY_API_URL`, `PAGERDUTY_CA_BUNDLE`); the client
refuses plain http. Every call has a timeout, 429 retries are capped (the library retries them
forever by default), and failures surface as `PagerDutyError` (an UpstreamError with the HTTP status,
PagerDuty's error code and its X-Request-Id).

Two flavours: "pagerduty" for background jobs (10 s timeout, 3 retries on 429) and
"pagerduty-interactive" for reads done while Slack waits for its 3-second answer (2.5 s, 1 retry).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from typing import Any

import pagerduty

from bot.errors import ConfigError, Conflict, UpstreamError
from bot.registry import Capability

capability = Capability("bot.adapters.pagerduty")

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # the API defaults to 25; ask for its maximum explicitly


class PagerDutyError(UpstreamError):
    """`retryable`: network failures (no status), 429 and 5xx may succeed later; other 4xx will not."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None, request_id=None):
        retryable = status is None or status == 429 or status >= 500
        super().__init__("PagerDuty", message, code, request_id, retryable=retryable)
        self.status = status

    @property
    def retriable(self) -> bool:
        """The former name of `retryable`."""
        return self.retryable

    @property
    def duplicate_incident_key(self) -> bool:
        return isinstance(self, Conflict)


class DuplicateIncidentKey(PagerDutyError, Conflict):
    """PagerDuty refused to open an incident: one with the same incident_key is open already."""


def _is_duplicate_key(status: int | None, message: str) -> bool:
    return status == 400 and "matching dedup key" in message.lower()


class PagerDuty:
    def __init__(
        self,
        api_key: str,
        base_url: str,
        from_email: str | None = None,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
        rate_limit_retries: int = 3,
        metrics=None,
    ):
        if not base_url.startswith("https://"):
            raise ConfigError(
                "invalid setting PAGERDUTY_API_URL: must be an https:// URL (the pagerduty client refuses plain http)"
            )
        verify: Any = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self.client = pagerduty.RestApiV2Client(
            api_key, default_from=from_email, base_url=base_url, verify=verify
        )
        self.client.timeout = timeout
        self.client.retry[429] = rate_limit_retries
        self.client.sleep_timer = 0.5
        self.client.max_http_attempts = rate_limit_retries + 1
        self.client.max_network_attempts = 1
        self.from_email = from_email
        self.metrics = metrics

    def close(self) -> None:
        self.client.close()

    # plumbing ------------------------------------------------------------------------------------
    def _call(self, action: str, fn, *args, **kwargs):
        outcome = "error"
        try:
            result = fn(*args, **kwargs)
            outcome = "ok"
            return result
        except pagerduty.HttpError as exc:
            raise _error(exc) from None
        except pagerduty.Error as exc:
            raise PagerDutyError(f"unreachable: {exc}") from None
        finally:
            if self.metrics is not None:
                self.metrics.api_calls.labels("pagerduty", action, outcome).inc()

    @staticmethod
    def _from(from_email: str | None) -> dict[str, Any]:
        return {"headers": {"From": from_email}} if from_email else {}

    # incidents -----------------------------------------------------------------------------------
    def create_incident(
        self,
        title: str,
        service_id: str,
        details: str | None = None,
        incident_key: str | None = None,
        urgency: str | None = None,
        from_email: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "incident",
            "title": title,
            "service": {"id": service_id, "type": "service_reference"},
        }
        if details:
            body["body"] = {"type": "incident_body", "details": details}
        if incident_key:
            body["incident_key"] = incident_key
        if urgency:
            body["urgency"] = urgency
        return self._call(
            "create_incident", self.client.rpost, "/incidents", json=body, **self._from(from_email)
        )

    def get_incident(self, incident_id: str) -> dict[str, Any]:
        return self._call("get_incident", self.client.rget, f"/incidents/{incident_id}")

    def find_incident_by_key(self, incident_key: str) -> dict[str, Any] | None:
        params = {"incident_key": incident_key, "date_range": "all"}
        found = self._call("list_incidents", lambda: list(self._iter("/incidents", params, limit=5)))
        return found[0] if found else None

    def list_incidents(
        self, statuses: list[str] | None = None, limit: int = 20, service_ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"sort_by": "created_at:desc"}
        if statuses:
            params["statuses"] = statuses
        if service_ids:
            params["service_ids"] = service_ids
        if statuses == ["resolved"]:
            params["date_range"] = "all"
        return self._call("list_incidents", lambda: list(self._iter("/incidents", params, limit=limit)))

    def update_incident(self, incident_id: str, status: str, from_email: str | None = None) -> dict[str, Any]:
        return self.change_incident(incident_id, {"status": status}, from_email)

    def change_incident(
        self, incident_id: str, fields: dict[str, Any], from_email: str | None = None
    ) -> dict[str, Any]:
        """PUT /incidents/{id} with the fields to change: status, assignments, escalation_policy,
        escalation_level, priority, urgency (PagerDuty's names and shapes)."""
        body = {"type": "incident_reference", **fields}
        return self._call(
            "update_incident",
            self.client.rput,
            f"/incidents/{incident_id}",
            json=body,
            **self._from(from_email),
        )

    def snooze_incident(
        self, incident_id: str, seconds: int, from_email: str | None = None
    ) -> dict[str, Any]:
        """POST /incidents/{id}/snooze: an acknowledged incident stays so for `seconds`, then triggers
        again (PagerDuty answers 400 for one that is not acknowledged)."""
        return self._call(
            "snooze_incident",
            self.client.rpost,
            f"/incidents/{incident_id}/snooze",
            json={"duration": int(seconds)},
            **self._from(from_email),
        )

    def add_note(self, incident_id: str, content: str, from_email: str | None = None) -> dict[str, Any]:
        return self._call(
            "add_note",
            self.client.rpost,
            f"/incidents/{incident_id}/notes",
            json={"content": content[:25000]},
            **self._from(from_email),
        )

    def incident_notes(self, incident_id: str) -> list[dict[str, Any]]:
        """GET /incidents/{id}/notes (one answer, oldest first)."""
        return self._call("list_notes", self.client.rget, f"/incidents/{incident_id}/notes")

    def incident_log(self, incident_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """The newest `limit` overview log entries of an incident (GET /incidents/{id}/log_entries,
        `is_overview`: status changes, assignments, escalations, notes, snoozes; no notifications),
        newest first."""
        entries = self._call(
            "list_log_entries",
            lambda: list(
                self._iter(f"/incidents/{incident_id}/log_entries", {"is_overview": "true"}, limit=PAGE_SIZE)
            ),
        )
        entries.sort(key=lambda e: str(e.get("created_at") or ""), reverse=True)
        return entries[:limit]

    def priorities(self) -> list[dict[str, Any]]:
        """The account's incident priorities (GET /priorities) in PagerDuty's order; empty when the
        account does not use priorities."""
        return self._call("list_priorities", lambda: list(self._iter("/priorities", {}, limit=100)))

    # people and on-call --------------------------------------------------------------------------
    def find_users(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Users whose name or e-mail contains `query` (GET /users?query=)."""
        return self._call("list_users", lambda: list(self._iter("/users", {"query": query}, limit=limit)))

    def get_escalation_policy(self, policy_id: str) -> dict[str, Any]:
        """One escalation policy with its `escalation_rules` (one per level)."""
        return self._call("get_escalation_policy", self.client.rget, f"/escalation_policies/{policy_id}")

    def find_user_by_email(self, email: str) -> dict[str, Any] | None:
        wanted = email.strip().lower()
        for user in self.find_users(wanted, limit=50):
            if str(user.get("email") or "").lower() == wanted:
                return user
        return None

    def oncalls(
        self, escalation_policy_ids: list[str] | None = None, schedule_ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"earliest": "true"}
        if escalation_policy_ids:
            params["escalation_policy_ids"] = escalation_policy_ids
        if schedule_ids:
            params["schedule_ids"] = schedule_ids
        return self._call("list_oncalls", lambda: list(self._iter("/oncalls", params, limit=500)))

    def find_escalation_policies(self, query: str) -> list[dict[str, Any]]:
        return self._call(
            "list_escalation_policies",
            lambda: list(self._iter("/escalation_policies", {"query": query}, limit=50)),
        )

    def find_schedules(self, query: str) -> list[dict[str, Any]]:
        return self._call(
            "list_schedules", lambda: list(self._iter("/schedules", {"query": query}, limit=50))
        )

    def _iter(self, path: str, params: dict[str, Any], limit: int) -> Iterator[dict[str, Any]]:
        """iter_all with the page size set explicitly, stopping after `limit` items."""
        for n, item in enumerate(self.client.iter_all(path, params=params, page_size=PAGE_SIZE)):
            if n >= limit:
                return
            yield item


def _error(exc: pagerduty.HttpError) -> PagerDutyError:
    response = exc.response
    status = response.status_code if response is not None else None
    request_id = response.headers.get("x-request-id") if response is not None else None
    message, code = f"HTTP {status}", str(status) if status else None
    try:
        err = (response.json() or {}).get("error") or {}
    except (ValueError, AttributeError):
        err = {}
    if isinstance(err, dict) and err:
        details = "; ".join(str(e) for e in err.get("errors") or [])
        message = str(err.get("message") or message) + (f": {details}" if details else "")
        code = str(err.get("code") or code)
    if status == 429:
        message = "rate limited by PagerDuty (429); try again in a minute"
    kind = DuplicateIncidentKey if _is_duplicate_key(status, message) else PagerDutyError
    return kind(message, status, code, request_id)


def _build(services, timeout: float, retries: int) -> PagerDuty:
    settings = services.settings
    key = settings.secret("PAGERDUTY_API_KEY")
    if not key:
        raise ConfigError("PagerDuty is not configured: set PAGERDUTY_API_KEY")
    return PagerDuty(
        key,
        settings.PAGERDUTY_API_URL,
        from_email=settings.PAGERDUTY_FROM_EMAIL,
        ca_bundle=str(settings.PAGERDUTY_CA_BUNDLE) if settings.PAGERDUTY_CA_BUNDLE else None,
        timeout=timeout,
        rate_limit_retries=retries,
        metrics=services.metrics,
    )


@capability.adapter("pagerduty")
def build(services) -> PagerDuty:
    return _build(services, timeout=10.0, retries=3)


@capability.adapter("pagerduty-interactive")
def build_interactive(services) -> PagerDuty:
    return _build(services, timeout=2.5, retries=1)
