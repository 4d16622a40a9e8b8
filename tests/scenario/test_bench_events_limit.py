"""`chatops bench events`' drain limit (bench/events.py `run_limit`): the real drain process against the
MNS emulator, at each connection count, the fastest being the limit."""

from __future__ import annotations

import os

from bench.events import LIMIT_THREADS, run_limit
from sandbox.stack import EmulatorStack, sandbox_env


def test_the_limit_is_the_fastest_full_drain_over_the_connection_counts(tmp_path):
    stack = EmulatorStack(["mns"]).start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(sandbox_env(stack, tmp_path))
        bodies = [f'{{"n": {n}}}' for n in range(300)]
        limit = run_limit(stack, env, bodies, len(bodies), 3, timeout=60)
        rates = {int(n): r for n, r in limit["by_threads"].items()}
        assert set(rates) == {*LIMIT_THREADS, 3}  # ours (3) is tried beside the fixed counts
        assert all(r > 0 for r in rates.values())  # each drained the whole queue
        assert limit["events_per_second"] == max(rates.values()) == rates[limit["threads"]]
        assert stack.get("mns").depth() == 0
    finally:
        stack.stop()
