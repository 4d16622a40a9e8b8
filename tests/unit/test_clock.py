"""OffsetClock: the wall time of another clock moved by an offset, on a ManualClock base (no sleeping)."""

from __future__ import annotations

import threading

from bot.clock import SYSTEM_CLOCK, ManualClock, OffsetClock


def test_an_offset_clock_starts_at_its_base_time_and_follows_it():
    base = ManualClock(start=1_000.0)
    clock = OffsetClock(base)
    assert clock.time() == 1_000.0 and clock.offset == 0.0
    base.advance(30)
    assert clock.time() == 1_030.0


def test_advance_and_set_move_the_wall_time_only():
    base = ManualClock(start=1_000.0)
    clock = OffsetClock(base)
    clock.advance(3 * 3600)
    assert clock.time() == 1_000.0 + 3 * 3600 and clock.offset == 3 * 3600
    assert clock.monotonic() == base.monotonic() == 1_000.0  # deadlines and waits stay the base's
    clock.advance(-1800)
    assert clock.offset == 3 * 3600 - 1800
    clock.set(1_774_745_940.0)  # 2026-03-29 01:59 Europe/Berlin
    assert clock.time() == 1_774_745_940.0 and clock.offset == 1_774_745_940.0 - 1_000.0
    base.advance(60)  # time goes on from the moved point at the base's pace
    assert clock.time() == 1_774_746_000.0


def test_sleep_is_the_base_clocks_and_keeps_the_offset():
    base = ManualClock(start=1_000.0)
    clock = OffsetClock(base, offset=500.0)
    clock.sleep(20)
    assert base.time() == 1_020.0 and clock.time() == 1_520.0 and clock.offset == 500.0


def test_reset_goes_back_to_the_base_time():
    base = ManualClock(start=1_000.0)
    clock = OffsetClock(base)
    clock.set(5_000.0)
    clock.reset()
    assert clock.offset == 0.0 and clock.time() == base.time()


def test_the_default_base_is_the_system_clock():
    clock = OffsetClock()
    assert clock.base is SYSTEM_CLOCK
    clock.advance(86400)
    assert abs(clock.time() - SYSTEM_CLOCK.time() - 86400) < 5
    assert abs(clock.monotonic() - SYSTEM_CLOCK.monotonic()) < 5


def test_moves_from_many_threads_are_all_counted():
    clock = OffsetClock(ManualClock(start=0.0))
    start = threading.Barrier(8)

    def mover():
        start.wait()
        for _ in range(1000):
            clock.advance(1)
            clock.time()

    threads = [threading.Thread(target=mover, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.offset == 8000 and clock.time() == 8000.0
