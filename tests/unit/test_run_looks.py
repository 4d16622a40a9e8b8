"""When a run looks at its invocations (bot.run_looks): the backoff, the placed look at the learnt finish,
and what a finish teaches the next run of the same command."""

from __future__ import annotations

import heapq
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.run_looks import FinishTimes, LookSchedule, command_key

FIRST, FACTOR, CAP = 0.2, 1.5, 1.0


def look_times(schedule: LookSchedule, until: float) -> list[float]:
    now, times = 0.0, []
    while now < until:
        now += schedule.pause(now)
        times.append(round(now, 6))
    return times


def simulate(duration: float, expected: float | None) -> tuple[float, float, int]:
    """One run of a command that takes `duration`: (running_at, done_at, looks)."""
    schedule = LookSchedule(FIRST, FACTOR, CAP, expected)
    now, looks = 0.0, 0
    while True:
        now += schedule.pause(now)
        looks += 1
        if now >= duration:
            return schedule.running_at, now, looks
        schedule.saw_running(now)


def test_without_a_learnt_finish_the_looks_back_off_to_the_cap_and_stay_there():
    times = look_times(LookSchedule(FIRST, FACTOR, CAP), 6.0)
    gaps = [round(b - a, 6) for a, b in zip([0.0, *times], times, strict=False)]
    assert gaps[:5] == [0.2, 0.3, 0.45, 0.675, 1.0] and set(gaps[5:]) == {1.0}


def test_a_learnt_finish_adds_one_look_then_short_ones():
    times = look_times(LookSchedule(FIRST, FACTOR, CAP, expected=3.05), 4.0)
    assert 3.05 in times  # the placed look
    after = [t for t in times if t > 3.05]
    assert round(after[0] - 3.05, 6) == 0.1  # short again right after it
    plain = look_times(LookSchedule(FIRST, FACTOR, CAP), 3.05)
    assert [t for t in times if t < 3.05] == [t for t in plain if t < 3.05]  # nothing before it moved


@given(
    expected=st.none() | st.floats(min_value=0.0, max_value=120.0),
    start=st.floats(min_value=0.0, max_value=100.0),
)
def test_looks_are_never_more_than_the_cap_apart(expected, start):
    schedule = LookSchedule(FIRST, FACTOR, CAP, expected)
    now = start  # a resumed run starts late
    for _ in range(200):
        pause = schedule.pause(now)
        assert 0.0 <= pause <= CAP
        now += pause


@given(duration=st.floats(min_value=0.05, max_value=300.0))
def test_runs_of_one_command_are_soon_seen_done_within_a_tenth_of_a_second(duration):
    times, key = FinishTimes(), command_key("cn-hangzhou", "RunShellScript", "sleep 3")
    lags = []
    for _ in range(12):
        running_at, done_at, _looks = simulate(duration, times.expected(key))
        assert running_at < duration <= done_at
        lags.append(done_at - duration)
        times.learn(key, running_at, done_at)
    assert max(lags[4:]) <= 0.15 + 1e-9  # after a few runs the placed look lands just after the finish
    assert lags[0] <= CAP + 1e-9  # the first run: the plain backoff, within the cap


def test_many_runs_ending_at_once_all_learn_the_same():
    times = FinishTimes()
    for _ in range(50):
        times.learn("k", 2.6, 3.6)
    assert times.expected("k") == 3.1
    times.learn("k", 3.0, 3.2)  # a narrower bracket inside it
    assert abs(times.expected("k") - 3.1) < 1e-9
    times.learn("k", 5.0, 6.0)  # outside it: the command got slower
    assert times.expected("k") == 5.5


def test_a_learnt_finish_is_bounded_and_kept_per_command():
    times = FinishTimes(longest=100.0)
    times.learn(command_key("r", "RunShellScript", "a"), 500.0, 900.0)
    assert times.expected(command_key("r", "RunShellScript", "a")) == 100.0
    assert times.expected(command_key("r", "RunShellScript", "b")) is None
    assert command_key("r", "RunShellScript", "a") != command_key("r", "RunPowerShellScript", "a")


def side_by_side(duration: float, sent: list[float], share: bool, slice_: float = 0.1) -> list[float]:
    """Runs of one command never run before, sent at `sent` (seconds). With `share`, as the poll loop
    does: a sleeping run reads the runs' latest estimate every `slice_` (it can bring its look forward)
    and a look that sees its run still running tells the others. Each run's lag: its done look − its
    finish."""
    times, key = FinishTimes(), "k"
    schedules = [LookSchedule(FIRST, FACTOR, CAP) for _ in sent]
    for schedule in schedules:
        schedule.pause(0.0)
    wake = [(t + min(schedules[n].due, slice_ if share else CAP), n) for n, t in enumerate(sent)]
    heapq.heapify(wake)
    lags = {}
    while wake:
        at, n = heapq.heappop(wake)
        elapsed, schedule = at - sent[n], schedules[n]
        if share and elapsed < schedule.due - 1e-12:  # a slice: what the others learnt meanwhile
            schedule.expect(times.expected(key))
        elif elapsed >= duration:  # the look sees it done
            lags[n] = elapsed - duration
            times.learn(key, schedule.running_at, elapsed)
            continue
        else:
            schedule.saw_running(elapsed)
            if share:
                times.saw_running(key, elapsed)
                schedule.expect(times.expected(key))
            schedule.pause(elapsed)
        step = min(schedule.due - elapsed, slice_) if share else schedule.due - elapsed
        heapq.heappush(wake, (sent[n] + elapsed + max(0.0, step), n))
    return [lags[n] for n in range(len(sent))]


@settings(deadline=None, max_examples=60)
@given(
    duration=st.floats(min_value=0.05, max_value=60.0),
    spread=st.floats(min_value=0.0, max_value=2.0),
)
def test_runs_side_by_side_are_never_seen_done_later_than_the_cap(duration, spread):
    sent = [spread * n / 49 for n in range(50)]
    assert max(side_by_side(duration, sent, True)) <= CAP + 1e-9


def test_runs_side_by_side_of_a_new_command_are_seen_done_sooner_for_learning_from_each_other():
    sent = [0.7 * n / 49 for n in range(50)]  # 50 runs sent over 0.7 s, as 50 runbooks started at once
    durations = [0.5 + 0.37 * k for k in range(160)]  # 0.5 s to 59 s, off the backoff's own grid
    shared = statistics.mean(statistics.mean(side_by_side(d, sent, True)) for d in durations)
    alone = statistics.mean(statistics.mean(side_by_side(d, sent, False)) for d in durations)
    assert alone > 0.4  # alone, a run's finish is seen about half a backoff gap late
    assert shared <= 0.6 * alone


def test_a_look_that_sees_the_command_still_running_raises_the_bracket_for_every_run():
    times = FinishTimes()
    times.learn("k", 2.0, 3.1)
    times.saw_running("k", 2.9)
    assert abs(times.expected("k") - 3.0) < 1e-9
    times.saw_running("k", 4.0)  # outside the bracket (a slower run): it says nothing
    times.saw_running("k", 1.0)
    assert abs(times.expected("k") - 3.0) < 1e-9
    schedule = LookSchedule(FIRST, FACTOR, CAP)
    schedule.saw_running(2.95)
    schedule.expect(2.5)  # behind this run's last look: no look placed there
    assert schedule.pause(2.95) == FIRST
