"""The policy file's `schedules` entries as written (pydantic models); handlers.schedules.model compiles
them and answers what they mean."""

from __future__ import annotations

import datetime as dt
from pathlib import PurePath
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from handlers.schedules.days import is_calendar


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Period(_Model):
    days: str = "daily"
    start: str | None = None  # "HH:MM" local; None = stop-only
    stop: str | None = None  # "HH:MM" local; None = start-only; stop < start = overnight

    @field_validator("start", "stop", mode="before")
    @classmethod
    def _base_sixty(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted 21:00 as the number 1260 (base 60); read it back as the time written
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return f"{value // 60:02d}:{value % 60:02d}"
        return value


class Schedule(_Model):
    timezone: str | None = None  # IANA; None → the policy's top-level timezone
    periods: tuple[Period, ...]
    holidays: tuple[str, ...] = ()  # ISO dates, country codes (JP, DE-BY), ICS calendars (URL, *.ics)
    workdays: tuple[str, ...] = ()  # ISO dates: make-up working days, treated as weekdays
    stop_mode: Literal["KeepCharging", "StopCharging"] = "KeepCharging"
    manual: Literal["respect", "enforce"] = "respect"
    selector: str | None = None  # instances by selector besides the tag
    warn_minutes: int = 15  # 0..240, minutes before a stop to warn

    @field_validator("holidays", "workdays", mode="before")
    @classmethod
    def _unquoted_dates(cls, value: object) -> object:
        # YAML reads an unquoted 2026-12-31 as a date; keep the text as written
        if isinstance(value, list | tuple):
            return tuple(v.isoformat() if isinstance(v, dt.date) else v for v in value)
        return value

    @field_validator("holidays")
    @classmethod
    def _calendar_files_beside_the_policy(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple:
        # a relative calendar path is relative to the policy file (`policy_dir` in the context)
        base = (info.context or {}).get("policy_dir")
        if base is None:
            return value
        return tuple(
            str(PurePath(base) / v)
            if is_calendar(v) and "://" not in v and not PurePath(v).is_absolute() and not v.startswith("~")
            else v
            for v in value
        )
