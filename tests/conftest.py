"""Shared fixtures: a real Redis server, the bot on loopback against the emulators."""

from __future__ import annotations

import os

import pytest

for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)
os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")


def _answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_server_url():
    """REDIS_URL if it answers, otherwise a private redis-server on a free loopback port."""
    url = os.environ.get("REDIS_URL")
    if url and _answers(url):
        yield url
        return
    from sandbox.stack import RedisServer

    try:
        server = RedisServer().start()
    except RuntimeError as exc:
        pytest.exit(f"{exc}. Run `make test` (it installs redis-server) or set REDIS_URL.", returncode=2)
    yield server.url
    server.stop()


@pytest.fixture
def redis_url(redis_server_url):
    """A clean keyspace for this test: our keys (store and task queue) are removed before it runs."""
    import redis

    client = redis.Redis.from_url(redis_server_url)
    for pattern in ("chatops:*", "huey.*"):
        keys = list(client.scan_iter(pattern, count=1000))
        if keys:
            client.delete(*keys)
    client.close()
    return redis_server_url


def quiet_sandbox_policy(tmp_path):
    """The sandbox's policy without its office-hours schedules and runbook triggers: the office machines' schedules would
    act at start (by the real time of day) and make a test's counts of calls and messages depend on
    when it runs. Tests of schedules bring their own policy."""
    import yaml

    from sandbox.stack import SANDBOX_POLICY

    path = tmp_path / "sandbox-policy-no-schedules.yaml"
    if not path.exists():
        policy = yaml.safe_load(SANDBOX_POLICY.read_text())
        policy.pop("schedules", None)
        for book in (policy.get("runbooks") or {}).values():
            book.pop("trigger", None)  # a cron would fire by the real time of day too
        path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


@pytest.fixture
def make_bot(tmp_path):
    """Start the whole bot (emulators + web + worker) in this process:

    bot = make_bot(redis_url=None, emulators=["slack", "ecs"], env={...}, worker=True, registry=None)
    """
    from sandbox.stack import BotStack
    from tests.support import slack_refusals

    started = []

    def factory(
        redis_url: str | None = None,
        emulators: list[str] | None = None,
        env: dict | None = None,
        worker: bool = True,
        data_dir=None,
        registry=None,
        clock=None,
    ):
        extra = dict(env or {})
        if redis_url:
            extra["REDIS_URL"] = redis_url
        extra.setdefault("CHATOPS_CONFIG", str(quiet_sandbox_policy(tmp_path)))
        stack = BotStack(
            data_dir=data_dir or tmp_path / f"bot{len(started)}",
            env=extra,
            emulators=emulators,
            worker=worker,
            registry=registry,
            clock=clock,
        )
        stack.start()
        started.append(stack)
        return stack

    yield factory
    refused = []
    for stack in reversed(started):
        stack.stop()
        if "slack" in stack.stack.emulators:
            refused += slack_refusals(stack.emulator("slack"))
    # Enforcement is on in every test: a message the bot built that Slack would refuse fails the test,
    # even where the test itself looks at something else.
    assert not refused, f"Slack refused what the bot sent: {refused}"
