"""When a wait first looks: learnt from the waits of its kind before it (bot.adapters.ecs_wait)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.adapters.ecs_wait import EARLIER, LONGEST_FIRST_LOOK, SettleTimes

KIND = ("cn-hangzhou", "Running")


def test_an_unknown_kind_looks_at_the_floor_and_kinds_are_apart():
    times = SettleTimes(floor=0.2)
    assert times.first_look(KIND) == 0.2 and not times.known(KIND)  # unknown: the wait looks often
    times.learn(KIND, looks=4, first_look=0.2, settled_at=12.5)
    assert times.first_look(KIND) == 12.5 and times.known(KIND)
    assert not times.known(("cn-hangzhou", "Stopped"))
    assert times.first_look(("cn-hangzhou", "Stopped")) == 0.2
    assert times.first_look(("eu-central-1", "Running")) == 0.2


def test_settled_at_the_first_look_the_next_one_comes_a_little_earlier_but_never_below_the_floor():
    times = SettleTimes(floor=0.2)
    times.learn(KIND, looks=1, first_look=10.0, settled_at=10.0)
    assert times.first_look(KIND) == 10.0 * EARLIER
    times.learn(KIND, looks=1, first_look=0.2, settled_at=0.2)
    assert times.first_look(KIND) == 0.2


def test_a_slow_wait_never_delays_the_next_first_look_past_the_cap():
    times = SettleTimes(floor=0.2)
    times.learn(KIND, looks=30, first_look=0.2, settled_at=900.0)
    assert times.first_look(KIND) == LONGEST_FIRST_LOOK


@given(
    st.lists(
        st.tuples(st.integers(1, 20), st.floats(0, 1e4, allow_nan=False), st.floats(0, 1e4, allow_nan=False)),
        max_size=30,
    )
)
def test_the_first_look_stays_between_the_floor_and_the_cap(waits):
    times = SettleTimes(floor=0.2)
    for looks, first, settled in waits:
        times.learn(KIND, looks, first, settled)
        assert 0.2 <= times.first_look(KIND) <= LONGEST_FIRST_LOOK
