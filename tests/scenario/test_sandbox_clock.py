"""The console's `clock` command moves the bot's wall clock (`services.clock`, an OffsetClock) and runs the
schedules' reconciliation at once when the bot has one; `chatops sandbox` starts the bot on such a clock."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

from bot.clock import ManualClock, OffsetClock
from bot.registry import Registry
from sandbox.console import Console, run_script
from tests.support import wait_for
from tests.toy import reconcile

ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
ENV.pop("REDIS_URL", None)


def console_bot(make_bot, tmp_path, clock, registry=None, worker=True):
    policy = tmp_path / "policy.yaml"
    policy.write_text("timezone: Europe/Berlin\n")
    bot = make_bot(
        emulators=["slack"],
        env={"CHATOPS_CONFIG": str(policy)},
        registry=registry if registry is not None else Registry(),
        clock=clock,
        worker=worker,
    )
    out = io.StringIO()
    return bot, Console(bot, out), out


def test_clock_moves_only_the_bots_wall_time(make_bot, tmp_path):
    clock = OffsetClock()
    bot, console, out = console_bot(make_bot, tmp_path, clock)
    assert bot.services.clock is clock
    assert run_script(console, ["clock +3h", "clock -30m", "clock +1d"]) == 0
    assert clock.offset == 3 * 3600 - 1800 + 86400
    assert abs(clock.monotonic() - time.monotonic()) < 5  # waits stay real
    text = out.getvalue()
    assert "+1d 2h 30m (ahead of real time)" in text and "(Europe/Berlin, alice's zone)" in text
    assert run_script(console, ["clock reset"]) == 0 and clock.offset == 0
    assert "none: real time" in out.getvalue()


def test_clock_sets_a_local_time_in_a_zone_or_the_users_own(make_bot, tmp_path):
    clock = OffsetClock()
    _, console, out = console_bot(make_bot, tmp_path, clock)
    real = time.time()
    target = real + 30 * 86400
    day = time.strftime("%Y-%m-%d", time.gmtime(target))
    assert run_script(console, [f"clock {day} 21:55 UTC"]) == 0
    assert time.strftime("%Y-%m-%d %H:%M", time.gmtime(clock.time())) == f"{day} 21:55"
    assert run_script(console, ["as erin", f"clock {day} 09:00"]) == 0  # erin's zone: Asia/Tokyo
    assert time.strftime("%Y-%m-%d %H:%M", time.gmtime(clock.time())) == f"{day} 00:00"
    assert "(Asia/Tokyo, erin's zone)" in out.getvalue() and "JST" in out.getvalue()


def test_clock_refuses_far_moves_and_bad_arguments_and_leaves_the_clock_alone(make_bot, tmp_path):
    clock = OffsetClock()
    _, console, out = console_bot(make_bot, tmp_path, clock)
    steps = [
        "clock -2d",
        "clock +401d",
        "clock soon",
        "clock 2027-02-30 10:00",
        "clock 2027-01-10 10:00 Mars/X",
    ]
    assert run_script(console, steps) == len(steps)
    assert clock.offset == 0
    text = out.getvalue()
    assert "at most 1 day behind" in text and "at most 400 days ahead" in text
    assert (
        "usage: clock [" in text and "is not a date and time" in text and "unknown time zone 'Mars/X'" in text
    )
    assert run_script(console, ["clock +2d", "clock -1d1h"]) == 1 and clock.offset == 2 * 86400
    assert "back at most 1 day at a time" in out.getvalue()


def next_spring_forward_in_berlin() -> dt.date:
    """The next last Sunday of March (Europe/Berlin skips 02:00-03:00 then) at least a day away."""
    today = dt.date.today()
    for year in (today.year, today.year + 1):
        day = dt.date(year, 3, 31)
        day -= dt.timedelta(days=(day.weekday() + 1) % 7)
        if day > today + dt.timedelta(days=1):
            return day
    raise AssertionError("unreachable")


def test_clock_refuses_a_local_time_that_a_dst_change_skips_and_finds_the_next_change(make_bot, tmp_path):
    clock = OffsetClock()
    _, console, out = console_bot(make_bot, tmp_path, clock)
    gap_day = next_spring_forward_in_berlin()
    assert run_script(console, [f"clock {gap_day} 02:30 Europe/Berlin"]) == 1 and clock.offset == 0
    assert f"{gap_day} 02:30 does not exist in Europe/Berlin" in out.getvalue()
    assert run_script(console, ["clock dst Europe/Berlin"]) == 0
    berlin = ZoneInfo("Europe/Berlin")
    now = clock.time()  # the change is 5 minutes after the moment the clock was set (just now)
    before, after = (dt.datetime.fromtimestamp(now + s, berlin) for s in (280, 310))
    assert before.utcoffset() != after.utcoffset()
    said = re.search(
        r"changes its clocks in 5 minutes: (\S+ \S+) (\w+) is followed by (\S+ \S+) (\w+)", out.getvalue()
    )
    assert said and (said.group(2), said.group(4)) == (before.tzname(), after.tzname())
    moved = clock.offset
    assert run_script(console, ["clock dst Asia/Tokyo"]) == 1 and "no DST change" in out.getvalue()
    assert clock.offset == moved  # the refused step left the clock where it was


def test_clock_runs_the_schedules_reconciliation_at_once_with_the_moved_time(make_bot, tmp_path):
    clock = OffsetClock()
    registry = Registry().include(reconcile.capability)
    bot, console, out = console_bot(make_bot, tmp_path, clock, registry=registry)
    store = bot.services.store
    # This minute's scheduled run (and the next ones') already happened: only an on-demand run is left.
    # The minutes before too: a loaded machine's worker may run an earlier minute's periodic run late,
    # now (with the time before the move: such a run is not the one this test is about).
    minute = int(time.time() // 60)
    for m in range(minute - 3, minute + 6):
        store.set(f"periodic:schedules.reconcile:{m}", "1", ttl=600)
    moved_to = time.time() + 3 * 3600
    assert run_script(console, ["clock +3h"]) == 0
    assert "(schedules.reconcile runs now, with the new time)" in out.getvalue()

    def moved_runs() -> list[float]:
        return [r for r in reconcile.seen(store) if r >= moved_to - 1]

    wait_for(moved_runs, 20, message="the reconciliation with the moved time")
    assert len(moved_runs()) == 1


def test_without_a_reconciliation_the_clock_just_moves(make_bot, tmp_path):
    clock = OffsetClock()
    bot, console, out = console_bot(make_bot, tmp_path, clock)
    assert "schedules.reconcile" not in bot.services.registry.jobs
    assert run_script(console, ["clock +1h"]) == 0 and clock.offset == 3600
    assert "runs now" not in out.getvalue()


def test_a_fixed_clock_is_shown_but_not_moved(make_bot, tmp_path):
    clock = ManualClock(start=1_800_000_000.0)
    _, console, out = console_bot(make_bot, tmp_path, clock, worker=False)
    assert run_script(console, ["clock", "clock +1h"]) == 1
    assert clock.time() == 1_800_000_000.0
    text = out.getvalue()
    assert "2027-01-15 08:00:00 UTC" in text and "cannot be moved" in text


def test_the_sandbox_starts_the_bot_on_a_movable_clock(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "sandbox", "--script", "-", "--data-dir", str(tmp_path)],
        input="clock +1d2h\nclock\nhelp\nclock reset\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert out.count("+1d 2h (ahead of real time)") == 2 and "none: real time" in out
    assert "clock [+3h | -30m" in out and "0 failed step(s)" in out
