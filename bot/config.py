"""Settings: the environment (see interfaces.md), read once into a frozen, typed object.

`load_settings()` is the only place that reads the environment. A missing or invalid value raises
`ConfigError` with one line that names the variable; the CLI prints that line and exits 2.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError


def _split_csv(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(str(v).strip() for v in value if str(v).strip())  # type: ignore[union-attr]


class Settings(BaseSettings):
    """Everything the processes read from the environment. Secrets are `SecretStr` (redacted in repr)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True)

    # Slack
    SLACK_BOT_TOKEN: SecretStr = SecretStr("")
    SLACK_SIGNING_SECRET: SecretStr = SecretStr("")
    SLACK_API_URL: str = "https://slack.com/api/"
    SLACK_NOTIFY_CHANNEL: str = ""
    # Policy and people
    CHATOPS_ADMINS: tuple[str, ...] = ()
    CHATOPS_CONFIG: Path | None = None
    CHATOPS_DATA_DIR: Path = Path("./.chatops")
    CHATOPS_TIMEZONE: str = "UTC"
    CHATOPS_LOG_LEVEL: str = "INFO"
    # Store and queue
    REDIS_URL: str | None = None
    # Alibaba Cloud
    ALIBABA_CLOUD_ACCESS_KEY_ID: SecretStr | None = None
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: SecretStr | None = None
    ALIBABA_CLOUD_REGION_ID: str = "cn-hangzhou"
    ECS_ENDPOINT: str | None = None
    SLB_ENDPOINT: str | None = None
    MNS_ENDPOINT: str | None = None
    MNS_QUEUE: str | None = None
    # PagerDuty
    PAGERDUTY_API_KEY: SecretStr | None = None
    PAGERDUTY_FROM_EMAIL: str | None = None
    PAGERDUTY_SERVICE_ID: str | None = None
    PAGERDUTY_API_URL: str = "https://api.pagerduty.com"
    PAGERDUTY_CA_BUNDLE: Path | None = None
    PAGERDUTY_WEBHOOK_SECRETS: tuple[SecretStr, ...] = ()
    # Calendars
    CALENDAR_ICS_URLS: tuple[str, ...] = ()
    # Web
    CHATOPS_MAX_BODY_BYTES: int = Field(default=1024 * 1024, gt=0)

    @field_validator("CHATOPS_ADMINS", "CALENDAR_ICS_URLS", mode="before")
    @classmethod
    def _csv(cls, value: object) -> tuple[str, ...]:
        return _split_csv(value)

    @field_validator("PAGERDUTY_WEBHOOK_SECRETS", mode="before")
    @classmethod
    def _csv_secrets(cls, value: object) -> tuple[SecretStr, ...]:
        return tuple(SecretStr(v) for v in _split_csv(value))

    @field_validator("SLACK_API_URL")
    @classmethod
    def _slack_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("PAGERDUTY_API_URL", "MNS_ENDPOINT")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/") if value else value

    @field_validator("CHATOPS_TIMEZONE")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **other_sources):
        # load_settings() collects the environment itself; letting pydantic-settings read os.environ
        # again would JSON-decode comma-separated values (CHATOPS_ADMINS=U1,U2) and fail.
        return (init_settings,)

    # Convenience -------------------------------------------------------------------------------
    def secret(self, name: str) -> str:
        value = getattr(self, name)
        return value.get_secret_value() if value is not None else ""

    @property
    def timezone(self):
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.CHATOPS_TIMEZONE)


# What every process that talks to Slack needs; `chatops web` and `chatops worker` both check it at start
# (before they open a store or a queue), with the same one-line errors.
REQUIRED_SETTINGS: tuple[tuple[str, str], ...] = (
    ("SLACK_SIGNING_SECRET", "to verify what Slack sends"),
    ("SLACK_BOT_TOKEN", "to answer"),
)


def check_required(settings: Settings) -> Settings:
    """Raise ConfigError (one line naming the variable) when a required setting is empty."""
    for name, why in REQUIRED_SETTINGS:
        if not settings.secret(name):
            raise ConfigError(f"invalid setting {name}: required {why}")
    return settings


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read the settings from `environ` (default: os.environ). Raises ConfigError naming the variable."""
    env = dict(os.environ if environ is None else environ)
    known = set(Settings.model_fields)
    values: dict[str, object] = {k: v for k, v in env.items() if k in known and v != ""}
    values.update(overrides)
    try:
        # Validate exactly the collected values: nothing else is read behind our back.
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    name = ".".join(str(p) for p in err.get("loc", ())) or "settings"
    msg = err.get("msg", "invalid value").removeprefix("Value error, ")
    return f"invalid setting {name}: {msg}"
