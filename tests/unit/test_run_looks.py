"""When a run looks at its invocations (bot.run_looks): the backoff, the placed look at the learnt finish,
and what a finish teaches the next run of the same command."""

from __future__ import annotations

from hypothesis import given
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
