"""Real `chatops worker` processes draining one MNS queue: stopped with SIGTERM, then killed with SIGKILL in
the middle of a drain, then a third one finishes — no event lost, none announced twice in Slack."""

from __future__ import annotations

import signal
import time

from bench.events import ROUTES, announced, compare, make_events, settled, start_worker, worker_env
from sandbox.stack import EmulatorStack
from tests.support import wait_for

POLICY = {
    "timezone": "Europe/Berlin",
    "routes": ROUTES,
    "events": {
        "wait_seconds": 1,
        "claim_seconds": 3,
        "batch_size": 4,
        "digest_quiet_seconds": 1.0,
        "channel_rate_per_second": 1.0,
    },
    "auto_restart": {"enabled": False},
}


def test_sigterm_hands_back_and_sigkill_mid_drain_loses_and_repeats_nothing(redis_url, tmp_path):
    with EmulatorStack(["slack", "mns", "ecs"]) as stack:
        slack, mns, ecs = stack.get("slack"), stack.get("mns"), stack.get("ecs")
        mns.set_visibility_timeout(3)
        mns.latency = 0.01  # a drain of a few seconds, so the signals land in the middle of it
        ids = [ecs.add_instance(f"kill-{n:02d}", tags={"env": ("dev", "prod")[n % 2]}) for n in range(40)]
        bodies, expected = make_events(480, [dict(ecs.instances[i]) for i in ids], dup_percent=3)
        mns.send_many(bodies)
        env = worker_env(stack, tmp_path, redis_url, POLICY)

        first = start_worker(env, tmp_path / "worker1.log")
        wait_for(lambda: mns.deleted_count() >= 60, 60, message="the first worker draining")
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
        now = time.time()
        with mns._cond:
            held = [m for m in mns.queue().messages.values() if m.visible_at > now]
        assert held == [], "a stopped worker must finish or hand back what it received"
        assert mns.depth() > 0

        second = start_worker(env, tmp_path / "worker2.log")
        done_before = mns.deleted_count()
        wait_for(lambda: mns.deleted_count() >= done_before + 80, 60, message="the second worker draining")
        second.kill()  # SIGKILL: no cleanup at all
        second.wait(10)
        assert mns.depth() > 0

        third = start_worker(env, tmp_path / "worker3.log")
        try:
            wait_for(lambda: mns.depth() == 0, 90, message="the queue drained")
            quiet = {"seq": -1, "since": time.time()}

            def calm() -> bool:
                seq = slack.last_seq
                if seq != quiet["seq"]:
                    quiet.update(seq=seq, since=time.time())
                return settled(redis_url, quiet["since"], quiet=2.0)

            wait_for(calm, 60, interval=0.2, message="Slack settled")
        finally:
            third.send_signal(signal.SIGTERM)
            third.wait(30)
        lost, duplicates = compare(expected, announced(slack))
        assert (lost, duplicates) == (0, 0)
        assert sum(expected.values()) == 480
        assert not [c for c in slack.calls if c.status == 429]
