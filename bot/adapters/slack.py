"""Slack Web API through slack_sdk: posting, editing, ephemeral messages, response_url, file uploads,
user profiles and user group members.

The WebClient honours Retry-After on 429 (RateLimitErrorRetryHandler) and retries 5xx and connection
errors a bounded number of times; every call has a timeout.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from bot.errors import UpstreamError
from bot.registry import Capability

capability = Capability("bot.adapters.slack")

log = logging.getLogger(__name__)
ZONE_CACHE_SECONDS = 600
RESPONSE_URL_HOSTS = frozenset({"hooks.slack.com"})  # where Slack's response_url values point


def make_web_client(token: str, base_url: str, timeout: int = 10, rate_limit_retries: int = 5) -> WebClient:
    return WebClient(
        token=token or None,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str


# Slack error codes that mean "try again later" (the client's own retries are spent by then).
RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def _retryable_status(status: int | None) -> bool:
    return status is not None and (status == 429 or status >= 500)


def _upstream(exc: SlackApiError) -> UpstreamError:
    response = exc.response
    error = response.get("error") if response is not None else None
    request_id = response.headers.get("x-slack-req-id") if response is not None and response.headers else None
    status = getattr(response, "status_code", None) if response is not None else None
    retryable = error in RETRYABLE_ERRORS or _retryable_status(status)
    # What Slack says is wrong, e.g. "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    details = (response.get("response_metadata") or {}).get("messages") if response is not None else None
    message = error or str(exc)
    if details:
        message += ": " + "; ".join(str(d) for d in details[:5])
    return UpstreamError("Slack", message, code=error, request_id=request_id, retryable=retryable)


class SlackMessenger:
    """What the bot says in Slack. Errors surface as UpstreamError."""

    def __init__(self, client: WebClient):
        self.client = client
        self._zones: dict[str, tuple[str | None, float]] = {}  # user id → (zone, until)

    def post(
        self, channel: str, text: str, blocks: list[dict] | None = None, thread_ts: str | None = None
    ) -> Posted:
        try:
            resp = self.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            raise _upstream(exc) from exc
        return Posted(resp["channel"], resp["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: list[dict] | None = None) -> None:
        try:
            self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks or [])
        except SlackApiError as exc:
            raise _upstream(exc) from exc

    def recent_messages(self, channel: str, limit: int = 200) -> list[dict[str, Any]]:
        """The channel's latest messages, newest first (conversations.history, up to `limit`)."""
        found: list[dict[str, Any]] = []
        cursor = None
        try:
            while len(found) < limit:
                resp = self.client.conversations_history(
                    channel=channel, limit=min(100, limit - len(found)), cursor=cursor
                )
                found += [m for m in resp.get("messages") or [] if isinstance(m, dict)]
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except SlackApiError as exc:
            raise _upstream(exc) from exc
        return found

    def post_ephemeral(self, channel: str, user: str, text: str, blocks: list[dict] | None = None) -> None:
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)
        except SlackApiError as exc:
            raise _upstream(exc) from exc

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        """Open a modal (views.open) for the click or command that gave `trigger_id` (valid 3 s)."""
        try:
            self.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            raise _upstream(exc) from exc

    def respond(self, response_url: str, payload: dict[str, Any]) -> None:
        """POST to a response_url (ephemeral answers, replacing the message a button sat on). Only to
        Slack's own response URL host, or to the host of the Web API the bot is pointed at (the
        sandbox's emulator): a signed payload must not make the bot POST anywhere else."""
        if not self.response_url_allowed(response_url):
            raise UpstreamError("Slack", "the response_url is not Slack's; nothing was sent", code="bad_url")
        resp = WebhookClient(response_url, timeout=10).send_dict(payload)
        if resp.status_code >= 400:
            raise UpstreamError(
                "Slack",
                f"response_url answered {resp.status_code}: {resp.body[:200]}",
                code=str(resp.status_code),
                retryable=_retryable_status(resp.status_code),
            )

    def response_url_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname in RESPONSE_URL_HOSTS and not parts.port:
            return True
        api = urlsplit(self.client.base_url)
        return bool(parts.netloc) and (parts.scheme, parts.netloc) == (api.scheme, api.netloc)

    def upload_text(
        self,
        channel: str,
        filename: str,
        content: str,
        title: str | None = None,
        comment: str | None = None,
        thread_ts: str | None = None,
    ):
        """Upload through the v2 external-upload flow (files.getUploadURLExternal → upload → complete),
        in the thread of `thread_ts` when given."""
        try:
            return self.client.files_upload_v2(
                channel=channel,
                filename=filename,
                content=content,
                title=title or filename,
                initial_comment=comment,
                thread_ts=thread_ts,
            )
        except SlackApiError as exc:
            raise _upstream(exc) from exc

    def usergroup_members(self, group_id: str) -> frozenset[str]:
        """The user ids in a Slack user group (usergroups.users.list: `{"ok": true, "users": [...]}`).
        An unknown group (`no_such_subteam`), a missing scope or an unreachable Slack is an UpstreamError."""
        try:
            resp = self.client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            raise _upstream(exc) from exc
        except OSError as exc:  # connection refused, timeout: the client's own retries are spent
            raise UpstreamError(
                "Slack", f"usergroups.users.list failed: {type(exc).__name__}", retryable=True
            ) from exc
        users = resp.get("users")
        if not isinstance(users, list):
            raise UpstreamError(
                "Slack", "usergroups.users.list answered without a user list", code="bad_response"
            )
        return frozenset(str(u) for u in users)

    def user_email(self, user_id: str) -> str | None:
        try:
            resp = self.client.users_info(user=user_id)
        except SlackApiError as exc:
            log.warning("users.info failed", extra={"user": user_id, "error": str(exc)})
            return None
        return ((resp.get("user") or {}).get("profile") or {}).get("email")

    def user_name(self, user_id: str) -> str | None:
        """The person's name as Slack shows it (profile real name, else the user name)."""
        try:
            resp = self.client.users_info(user=user_id)
        except SlackApiError as exc:
            log.warning("users.info failed", extra={"user": user_id, "error": str(exc)})
            return None
        user = resp.get("user") or {}
        return (user.get("profile") or {}).get("real_name") or user.get("real_name") or user.get("name")

    def user_timezone(self, user_id: str) -> str | None:
        """The IANA zone of the user's Slack profile (remembered for ZONE_CACHE_SECONDS), else None."""
        now = time.monotonic()
        cached = self._zones.get(user_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            resp = self.client.users_info(user=user_id)
        except SlackApiError:
            return None
        zone = (resp.get("user") or {}).get("tz")
        self._zones[user_id] = (zone, now + ZONE_CACHE_SECONDS)
        return zone


@capability.adapter("slack")
def build(services) -> SlackMessenger:
    return SlackMessenger(services.slack_client)
