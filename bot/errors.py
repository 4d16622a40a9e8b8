"""The one error tree of the bot.

    ChatOpsError
    ├── ConfigError        a setting or the policy file is wrong; start-up stops with one line
    ├── UserError          the caller asked for something malformed or not allowed; shown ephemeral, with usage
    │   └── Forbidden      the policy denies it
    ├── UpstreamError      a vendor API failed; shown with the provider and its request id;
    │   │                  `retryable` says whether the same call may succeed later (set by the adapter)
    │   └── Conflict       the provider refused because it has the thing already (take the existing one)
    └── StoreUnavailable   Redis / SQLite cannot be reached (webhooks answer 503 so the sender retries)

Anything else that escapes a handler is a bug: the user sees a correlation id, the log has the trace.
"""

from __future__ import annotations

import uuid


class ChatOpsError(Exception):
    """Base of every error the bot raises on purpose. `retryable`: False unless an adapter said the
    same call may succeed later (see UpstreamError)."""

    retryable: bool = False


class ConfigError(ChatOpsError):
    """A setting or the policy file is invalid. The message is one line naming the variable or field."""


class UserError(ChatOpsError):
    """Bad input or a refused request. `usage` is appended to the ephemeral answer."""

    def __init__(self, message: str, usage: str | None = None):
        super().__init__(message)
        self.message = message
        self.usage = usage


class Forbidden(UserError):
    """The policy denies the action."""


class UpstreamError(ChatOpsError):
    """A vendor API call failed. Carries the provider, its error code and its request id, and whether
    the same call may succeed later (`retryable`: throttling, 5xx, timeouts, connection errors), which
    the adapter that raises it decides; a refusal (invalid parameter, not found, forbidden) is not."""

    def __init__(
        self,
        provider: str,
        message: str,
        code: str | None = None,
        request_id: str | None = None,
        retryable: bool = False,
    ):
        super().__init__(message)
        self.provider = provider
        self.message = message
        self.code = code
        self.request_id = request_id
        self.retryable = retryable

    def __str__(self) -> str:
        parts = [f"{self.provider}: {self.message}"]
        if self.code:
            parts.append(f"code {self.code}")
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        return " — ".join(parts)


class Conflict(UpstreamError):
    """The provider refused to create something it has already (e.g. a PagerDuty incident with the same
    incident_key): a retried request that did reach it; the caller takes the existing one."""


class StoreUnavailable(ChatOpsError):
    """The store (Redis or SQLite) did not answer."""

    retryable = True  # it comes back: a job that met it is tried again


def new_correlation_id() -> str:
    return uuid.uuid4().hex[:12]


def user_message(exc: BaseException, correlation_id: str | None = None) -> str:
    """The text a Slack user sees for an error: specific for known errors, a correlation id for bugs."""
    if isinstance(exc, UserError):
        text = f":warning: {exc.message}"
        if exc.usage:
            text += f"\n*Usage:* {exc.usage}"
        return text
    if isinstance(exc, UpstreamError):
        return f":x: {exc}"
    if isinstance(exc, StoreUnavailable):
        return ":x: The bot's store is unreachable right now; nothing was changed. Try again in a minute."
    return (
        ":boom: Something went wrong on our side; nothing was reported to the cloud provider as done. "
        f"Reference: `{correlation_id or new_correlation_id()}`"
    )
