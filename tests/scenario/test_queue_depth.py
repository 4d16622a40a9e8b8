"""The MNS queue's depth as metrics and in Slack: the periodic job reads GetQueueAttributes and peeks for
the oldest waiting message (leaving it as it was); the workers' /metrics and `/ecs events status` show
the reading."""

from __future__ import annotations

import json
import re

from bench.events import worker_env
from bot.adapters.mns import MnsQueueClient
from bot.clock import OffsetClock
from bot.queue import TaskQueue
from bot.registry import Registry, find_capabilities
from handlers.events.queue_depth import JOB, latest
from sandbox import credentials
from sandbox.stack import EmulatorStack
from tests.support import http, slash, wait_for, worker_process

EMULATORS = ["slack", "mns", "ecs"]
AK, SK = credentials.ALIBABA_ACCESS_KEY_ID, credentials.ALIBABA_ACCESS_KEY_SECRET
AHEAD = 3600.0  # the bot's clock runs an hour ahead of the emulators': every waiting message is ≥ 1 h old


def metric(text: str, name: str) -> float | None:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def without_consumer() -> Registry:
    """The bot, except the MNS consumer: what is sent stays on the queue."""
    return Registry().include(*(c for c in find_capabilities() if c.name != "handlers.events.consumer"))


def test_the_job_reads_the_queue_and_metrics_and_slack_show_it(make_bot, redis_url):
    clock = OffsetClock(offset=AHEAD)
    bot = make_bot(redis_url=redis_url, emulators=EMULATORS, registry=without_consumer(), clock=clock)
    mns = bot.emulator("mns")
    before = latest(bot.services)
    answer = slash(bot, "/ecs", "events status").json()
    if before is None and latest(bot.services) is None:  # the minute's own run may come at start
        assert "No reading of the MNS queue yet" in answer["text"]
    waiting = mns.send_many(["one", "two", "three"])
    mns.send("later", delay=600)
    (taken,) = MnsQueueClient(mns.base_url, credentials.MNS_QUEUE, AK, SK, timeout=10).receive(1, 0)
    assert taken.message_id == waiting[0]
    asked = clock.time()
    bot.services.queue.enqueue(JOB)  # now, as the minute's scheduler would (whose run may come too)

    def fresh():
        reading = latest(bot.services)
        return reading is not None and reading.read_at >= asked

    wait_for(fresh, 30, message="the queue's reading")
    text = http("GET", bot.web_url + "/metrics").text
    states = {
        s: metric(text, f'chatops_mns_messages{{state="{s}"}}') for s in ("active", "inactive", "delayed")
    }
    assert states == {"active": 2.0, "inactive": 1.0, "delayed": 1.0}
    assert metric(text, "chatops_mns_oldest_message_age_seconds") >= AHEAD
    assert "BatchPeekMessage" in {c.name for c in mns.calls}
    assert [mns.message_info(m)["dequeue_count"] for m in waiting[1:]] == [0, 0]  # peeking took nothing
    answer = slash(bot, "/ecs", "events status").json()
    assert answer["text"] == "ECS events queue ecs-events: 2 messages waiting, 1 in flight, 1 delayed"
    shown = json.dumps(answer["blocks"])
    assert "fallen behind" in shown and "*Waiting*\\n2" in shown


def test_a_worker_process_exposes_the_depth_on_its_metrics(redis_url, tmp_path):
    with EmulatorStack(EMULATORS) as stack:
        mns = stack.get("mns")
        for n in range(3):
            mns.send(f"not yet {n}", delay=600)  # delayed: the worker's consumer cannot take them
        env = worker_env(stack, tmp_path, redis_url, {"events": {"wait_seconds": 1}})
        with worker_process(env) as url:
            shown = wait_for(
                lambda: "chatops_mns_messages" in http("GET", url).text, 30, message="the gauges"
            )
            assert shown is True  # from the worker's start on, unknown (NaN) until a reading
            TaskQueue(redis_url, tmp_path, Registry.discover()).enqueue(
                JOB
            )  # as the minute's scheduler would

            def delayed() -> float | None:
                return metric(http("GET", url).text, 'chatops_mns_messages{state="delayed"}')

            assert wait_for(lambda: delayed() == 3.0, 60, message="the worker's reading") is True
            assert metric(http("GET", url).text, "chatops_mns_oldest_message_age_seconds") == 0.0
