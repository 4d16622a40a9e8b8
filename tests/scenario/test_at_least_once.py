"""Nothing accepted is lost: webhook events admitted with 202 are drained by worker processes that are
killed with SIGKILL at random moments, and Redis (append-only file, fsync always) is killed and restarted
once in the middle. Every event ends up with its Slack card (bot.queue_delivery puts back what a dead
worker held; the effect's claim lets another worker take over a dead worker's event)."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from sandbox.stack import RedisServer
from tests.scenario.test_webhook_endpoint import NEW, OLD, deliver, v3
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 600
POLICY = """
pagerduty:
  effect_claim_seconds: 5
"""


def start_worker(env: dict, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "ab")  # noqa: SIM115 - the worker's log, closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker", "--threads", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )


def cards(bot) -> Counter:
    """Incident number → how many cards were posted for it."""
    found = Counter()
    for m in bot.emulator("slack").channel_messages("C_OPS"):
        hit = re.match(r":\w+: #(\d+) Test incident", m.text)
        if hit:
            found[int(hit.group(1))] += 1
    return found


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_admitted_webhook_events_survive_worker_sigkills_and_a_redis_restart(make_bot, tmp_path, backend):
    server = RedisServer(persistent=True).start() if backend == "redis" else None
    try:
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY)
        bot = make_bot(
            redis_url=server.url if server else None,
            emulators=["slack"],
            worker=False,
            env={"PAGERDUTY_WEBHOOK_SECRETS": f"{NEW},{OLD}", "CHATOPS_CONFIG": str(policy)},
        )
        for n in range(1, EVENTS + 1):
            assert deliver(bot.web_url, v3("incident.triggered", n)).status == 202
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(bot.env, PYTHONPATH=str(ROOT), CHATOPS_QUEUE_DEAD_AFTER="2", CHATOPS_LOG_LEVEL="WARNING")
        rng = random.Random(int(os.environ.get("KILL_SEED", "11")))
        for round_ in range(3):
            worker = start_worker(env, tmp_path / f"worker{round_}.log")
            try:
                before = sum(cards(bot).values())
                wait_for(lambda b=before: sum(cards(bot).values()) > b, 60, message="this worker draining")
                time.sleep(rng.uniform(0.05, 0.25))  # a random moment in the drain
            finally:
                worker.kill()
                worker.wait(10)
            if round_ == 1 and server is not None:  # and Redis once, with everything written on disk
                server.kill()
                server.start()
        drained = sum(cards(bot).values())
        assert drained < EVENTS, "the kills came too late to test anything"
        last = start_worker(env, tmp_path / "worker-last.log")
        try:
            wait_for(lambda: len(cards(bot)) == EVENTS, 120, message="every event's card")
        finally:
            last.kill()
            last.wait(10)
        found = cards(bot)
        assert sorted(found) == list(range(1, EVENTS + 1))  # nothing lost
        duplicated = {n: c for n, c in found.items() if c > 1}
        assert duplicated == {}, duplicated
    finally:
        if server is not None:
            server.stop()
