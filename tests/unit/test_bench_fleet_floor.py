"""The fleet benchmark's floor: latency once, the admission window per extra q batches, the transition."""

from __future__ import annotations

import pytest

from bench.fleet import floor_seconds, preview_floor_seconds


def test_batches_within_one_window_pay_latency_and_transition_once():
    assert floor_seconds(1000, latency=0.05, qps=20, transition=1.0) == pytest.approx(1.05)
    assert floor_seconds(1, latency=0.05, qps=20, transition=1.0) == pytest.approx(1.05)


def test_batches_beyond_the_window_wait_for_it():
    # 45 batches at 20 per second: the last one is admitted two seconds after the first
    assert floor_seconds(4500, latency=0.05, qps=20, transition=1.0) == pytest.approx(3.05)
    assert floor_seconds(2100, latency=0.1, qps=20, transition=2.0) == pytest.approx(3.1)


def test_preview_pages_are_sequential():
    assert preview_floor_seconds(1000, latency=0.05, qps=20) == pytest.approx(0.5)
    # tiny latency: the window, not the latency, bounds 50 pages
    assert preview_floor_seconds(5000, latency=0.001, qps=20) == pytest.approx(2.001)
