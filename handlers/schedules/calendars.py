"""ICS calendars as a schedule's holidays: `holidays: ["JP", "https://…/company-holidays.ics"]`.

Each calendar's all-day events (not cancelled) are holidays on every date they cover; timed events are
left out (a two-hour meeting is no reason to keep a fleet off all day). Calendars are read through the
calendar adapter (conditional GET, RRULE / EXDATE / RECURRENCE-ID expansion) by the reconciler, when a
calendar was last checked more than REFRESH_SECONDS ago, and kept in the store, so every process sees
the same days and a calendar that cannot be read keeps its last known days (the trouble is reported
once a day to the ops channel and the log, and `/ecs schedule show` says so).

    schedules:calendars           hash: url → {"days": {date: summary}, "etag", "last_modified",
                                  "checked_at", "read_at", "error", "timed"}
    schedules:calendars:version   changes whenever some calendar's days change
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from bot.adapters.calendar import local_path
from bot.errors import ChatOpsError
from bot.render import escape
from handlers.schedules.days import Calendar, is_calendar, parse_holiday
from handlers.schedules.model import calendar_label

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

CALENDARS = "schedules:calendars"
VERSION = "schedules:calendars:version"
REFRESH_SECONDS = 1800.0  # a calendar is asked again (conditionally) this often
REREAD_SECONDS = 7 * 86400.0  # and read whole at least this often, so its window moves with the date
WINDOW = (dt.timedelta(days=40), dt.timedelta(days=400))  # holidays kept: this far back and ahead
UTC = dt.UTC


def calendar_urls(schedules: Mapping) -> list[str]:
    """Every ICS calendar the policy's schedules name, once each, in order."""
    out: list[str] = []
    for schedule in schedules.values():
        for text in schedule.holidays:
            if isinstance(text, str) and is_calendar(text):
                entry = parse_holiday(text)
                if isinstance(entry, Calendar) and entry.url not in out:
                    out.append(entry.url)
    return out


def check_files(schedules: Mapping) -> None:
    """A calendar given as a file must be there at start-up; ValueError naming the field."""
    for name, schedule in schedules.items():
        for j, text in enumerate(schedule.holidays):
            entry = parse_holiday(text) if isinstance(text, str) and is_calendar(text) else None
            path = local_path(entry.url) if isinstance(entry, Calendar) else None
            if path is not None and not path.is_file():
                raise ValueError(f"schedules.{name}.holidays[{j}]: no calendar file at {path}")


def holiday_days(occurrences: Iterable) -> tuple[dict[dt.date, str], int]:
    """(date → summary for every date an all-day, not cancelled event covers; how many timed events
    were left out). Occurrences come from the adapter read with UTC as the zone of floating dates, so an
    all-day event's UTC date is the date written in the calendar."""
    days: dict[dt.date, str] = {}
    timed = 0
    for occ in occurrences:
        if occ.cancelled:
            continue
        if not occ.all_day:
            timed += 1
            continue
        day, last = occ.start.date(), max(occ.start.date(), occ.end.date() - dt.timedelta(days=1))
        while day <= last:
            known = days.get(day)
            days[day] = occ.summary if not known or known == occ.summary else f"{known}; {occ.summary}"
            day += dt.timedelta(days=1)
    return dict(sorted(days.items())), timed


def _load(store) -> dict[str, dict]:
    out = {}
    for url, raw in store.hgetall(CALENDARS).items():
        try:
            out[url] = json.loads(raw)
        except ValueError:
            continue
    return out


def version(store) -> str:
    return store.get(VERSION) or ""


def known_days(store) -> dict[str, dict[dt.date, str]]:
    """url → the holidays last read from it."""
    out = {}
    for url, state in _load(store).items():
        days = {}
        for iso, summary in (state.get("days") or {}).items():
            try:
                days[dt.date.fromisoformat(iso)] = summary
            except ValueError:
                continue
        out[url] = days
    return out


def states(store) -> dict[str, dict]:
    """url → what is known of the calendar (for `/ecs schedule show`)."""
    return _load(store)


def refresh(services: Services, urls: list[str], force: bool = False) -> list[str]:
    """Read the calendars that are due (all with `force`); returns those whose holidays changed."""
    if not urls:
        return []
    now = services.clock.time()
    known = _load(services.store)
    changed = []
    for url in urls:
        state = known.get(url) or {}
        if not force and now - float(state.get("checked_at") or 0) < REFRESH_SECONDS:
            continue
        before = state.get("days")
        state = _read(services, url, state, now)
        services.store.hset(CALENDARS, url, json.dumps(state, sort_keys=True))
        if state.get("days") != before:
            changed.append(url)
    if changed:
        services.store.set(VERSION, f"{now:.3f}")
        log.info("holiday calendars changed", extra={"calendars": [calendar_label(u) for u in changed]})
    return changed


def _read(services: Services, url: str, state: dict, now: float) -> dict:
    feeds = services.adapter("calendar")
    whole = "days" not in state or now - float(state.get("read_at") or 0) >= REREAD_SECONDS
    state = {**state, "checked_at": now}
    try:
        fetched = feeds.fetch(
            url,
            etag=None if whole else state.get("etag"),
            last_modified=None if whole else state.get("last_modified"),
        )
        if fetched.not_modified:
            state.pop("error", None)
            return state
        at = dt.datetime.fromtimestamp(now, UTC)
        occurrences = feeds.occurrences(url, fetched.body, at - WINDOW[0], at + WINDOW[1], UTC)
    except ChatOpsError as exc:
        state["error"] = str(exc)
        _report(services, url, str(exc), now)
        return state
    days, timed = holiday_days(occurrences)
    state.update(
        days={d.isoformat(): s for d, s in days.items()},
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        read_at=now,
        timed=timed,
    )
    state.pop("error", None)
    return state


def _report(services: Services, url: str, error: str, now: float) -> None:
    """A calendar that cannot be read: once a day per calendar, to the ops channel and the log."""
    label = calendar_label(url)
    log.warning("cannot read a holiday calendar", extra={"calendar": label, "error": error})
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    day = dt.datetime.fromtimestamp(now, UTC).date().isoformat()
    if not services.store.set_nx(f"schedules:calendars:reported:{digest}:{day}", "1", 2 * 86400):
        return
    channel = services.policy.events.ops_channel or services.policy.events.default_channel
    channel = channel or services.settings.SLACK_NOTIFY_CHANNEL
    if channel:
        services.slack.post(
            channel,
            f":warning: The holiday calendar `{escape(label)}` cannot be read ({escape(error)}); schedules "
            "keep using the holidays last read from it.",
        )
