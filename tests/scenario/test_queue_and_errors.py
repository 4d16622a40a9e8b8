"""Slow work goes through the task queue and survives a web restart; bugs surface as a correlation id."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest

from bot.commands import Reply
from bot.config import load_settings
from bot.errors import UpstreamError, UserError
from bot.logs import JsonFormatter
from bot.queue import current_attempt
from bot.registry import Capability, Registry
from bot.services import Services
from bot.worker import Worker
from tests.support import slash, wait_for

toy = Capability("tests.queue_and_errors")


@toy.job("test.remember")
def remember(services, key: str, value: str) -> None:
    services.store.set(f"test:{key}", value)


@toy.job("test.flaky", retries=3, retry_delay=0.05)
def flaky(services, key: str, failures: int, error: str) -> None:
    """Fails `failures` times (a retryable upstream error, or a user error), then records its attempt."""
    count = services.store.incr(f"test:{key}:runs")
    if count <= failures:
        if error == "user":
            raise UserError("that will never work")
        raise UpstreamError("ECS", "throttled", code="Throttling", retryable=True)
    services.store.set(f"test:{key}", str(current_attempt()))


@toy.subcommand("/zz-test", "boom", permission="ecs.help", usage="/zz-test boom", summary="raises a bug")
def boom(req) -> Reply:
    raise RuntimeError("secret internals: /etc/passwd")


@toy.subcommand("/zz-test", "later", permission="ecs.help", usage="/zz-test later KEY", summary="enqueue")
def later(req) -> Reply:
    req.services.queue.enqueue("test.remember", key=req.args, value=req.actor.user_id)
    return Reply(f"queued {req.args}")


def _services(tmp_path, redis_url=None) -> Services:
    env = {"CHATOPS_DATA_DIR": str(tmp_path), "SLACK_API_URL": "http://127.0.0.1:9/api/"}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return Services(load_settings(env), registry=_registry())


def _registry() -> Registry:
    """The bot's capabilities plus this test's own (registered into this registry only)."""
    return Registry.discover(extra=[toy])


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_job_enqueued_by_a_web_process_runs_after_that_process_is_gone(tmp_path, backend, request):
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    web = _services(tmp_path, redis_url)
    web.queue.enqueue("test.remember", key="k1", value="v1")
    assert web.queue.pending() == 1
    web.close()  # the web process is gone; the job is in the store

    worker_services = _services(tmp_path, redis_url)
    since = time.time()
    worker = Worker(worker_services, workers=1)
    worker.start()
    try:
        assert wait_for(lambda: worker_services.store.get("test:k1"), message="the job") == "v1"
        assert worker_services.queue.live_workers(since) == 1  # its heartbeat says it consumes
    finally:
        worker.stop(timeout=5)
        worker_services.close()
    check = _services(tmp_path, redis_url)
    try:
        assert check.queue.live_workers(since) == 0  # a stopped worker says so
    finally:
        check.close()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_delayed_job_runs_once_and_leaves_nothing_held(tmp_path, backend, request):
    """A job enqueued with a delay reaches a worker before its time; Huey puts it on the schedule. The
    worker must let go of what it took then, or a later recovery runs it again and the queue never
    looks drained."""
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    services = _services(tmp_path, redis_url)
    worker = Worker(services, workers=1)
    worker.start()
    try:
        services.queue.enqueue("test.flaky", key="later", failures=0, error="user", delay=0.3)
        assert wait_for(lambda: services.store.get("test:later"), 20, message="the delayed job") == "1"
        storage = services.queue.huey.storage
        wait_for(lambda: storage.held() == 0, 10, message="nothing held")
        assert services.store.get("test:later:runs") == "1"
    finally:
        worker.stop(timeout=5)
        services.close()


def test_slash_command_hands_work_to_the_worker(make_bot):
    bot = make_bot(emulators=["slack"], registry=_registry())
    resp = slash(bot, "/zz-test", "later abc", user="U_BOB")
    assert resp.json()["text"] == "queued abc"
    assert wait_for(lambda: bot.services.store.get("test:abc"), message="the job") == "U_BOB"


def test_a_bug_shows_a_correlation_id_that_is_in_the_json_log(make_bot, caplog):
    bot = make_bot(emulators=["slack"], worker=False, registry=_registry())
    with caplog.at_level(logging.ERROR):
        resp = slash(bot, "/zz-test", "boom")
    text = resp.json()["text"]
    assert resp.status == 200
    assert "Traceback" not in text and "/etc/passwd" not in text
    cid = re.search(r"Reference: `([0-9a-f]{12})`", text).group(1)
    records = [r for r in caplog.records if getattr(r, "correlation_id", None) == cid]
    assert records, "the correlation id must be logged"
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["correlation_id"] == cid and "RuntimeError" in line["exc"]


def test_json_logs_mask_registered_secrets():
    from bot.logs import register_secret

    register_secret("xoxb-do-not-log-me")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "token is %s", ("xoxb-do-not-log-me",), None)
    out = JsonFormatter().format(record)
    assert "xoxb-do-not-log-me" not in out and "***" in json.loads(out)["msg"]


def test_periodic_jobs_run_once_per_minute_across_workers_and_never_overlap(tmp_path, redis_url):
    from bot.queue import JobSpec, _run_periodic_once

    calls = []
    a, b = _services(tmp_path / "a", redis_url), _services(tmp_path / "b", redis_url)
    spec = JobSpec("test.tick", lambda services: calls.append(services), cron={"minute": "*"})
    minute = 1_700_000_040.0
    outcomes = [_run_periodic_once(a, spec, now=minute), _run_periodic_once(b, spec, now=minute + 5)]
    assert sorted(outcomes) == ["ok", "skipped"] and len(calls) == 1
    with a.store.lock("periodic:test.tick", ttl=30):
        assert _run_periodic_once(b, spec, now=minute + 60) == "overlap"
    assert len(calls) == 1
    assert _run_periodic_once(b, spec, now=minute + 120) == "ok" and len(calls) == 2
    a.close()
    b.close()


def test_a_periodic_job_run_on_demand_runs_after_the_minutes_run_but_never_beside_another(
    tmp_path, redis_url
):
    from bot.queue import JobSpec, _run_periodic_once

    calls = []
    services = _services(tmp_path, redis_url)
    spec = JobSpec("test.reconcile", lambda services: calls.append(1), cron={"minute": "*"})
    minute = 1_700_000_040.0
    assert _run_periodic_once(services, spec, now=minute) == "ok"
    assert _run_periodic_once(services, spec, now=minute + 5) == "skipped"
    assert _run_periodic_once(services, spec, now=minute + 5, on_demand=True) == "ok"
    assert _run_periodic_once(services, spec, now=minute + 6, on_demand=True) == "ok" and len(calls) == 3
    services.close()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_failing_job_is_tried_again_by_the_queue_until_it_succeeds_or_its_retries_run_out(
    tmp_path, backend, request
):
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    services = _services(tmp_path, redis_url)
    worker = Worker(services, workers=2)
    worker.start()
    try:
        services.queue.enqueue("test.flaky", key="twice", failures=2, error="upstream")
        services.queue.enqueue("test.flaky", key="always", failures=99, error="upstream")
        services.queue.enqueue("test.flaky", key="refused", failures=1, error="user")
        assert wait_for(lambda: services.store.get("test:twice"), 30, message="the third attempt") == "3"
        runs = lambda key: int(services.store.get(f"test:{key}:runs") or 0)  # noqa: E731
        assert wait_for(lambda: runs("always") == 4, 30, message="1 run + 3 retries")
        assert runs("refused") == 1  # a user error is not tried again
        metrics = lambda: services.metrics.render().decode()  # noqa: E731
        final = 'chatops_jobs_total{job="test.flaky",outcome="error"} 2.0'  # "always" and "refused"
        assert wait_for(lambda: final in metrics(), 10, message="the final failures")
        assert 'chatops_jobs_total{job="test.flaky",outcome="retry"} 5.0' in metrics()  # 2 + 3
        assert runs("always") == 4
    finally:
        worker.stop(timeout=5)
        services.close()
