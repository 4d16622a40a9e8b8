"""`chatops bench events`: 10,000 ECS events over 500 instances through the MNS emulator into `workers`
`chatops worker` processes (default 2, one per core of this machine class, as the worker is deployed: a
process runs Python on one core at a time) and the Slack emulator in rate-limit mode (1 message/s/channel,
429 beyond).

The workers start first, on an empty queue; once every consumer is long-polling, the queue is filled
(a mix of both CloudMonitor envelope shapes, Base64 and raw bodies, plus ~1 % duplicate deliveries), as
events reach workers that are already running. `seconds` runs from the first message handed out to
the last one deleted. Afterwards, once Slack is quiet, every event is looked for in Slack — single
messages, and every line of the digests (their attached files) — to count lost and duplicated
announcements; `max_channel_rate` is the highest rate of message calls (posts and edits) to any channel
over any 10-second window.

Side by side in the same run, on the same queue contents (the queue refilled with the same bodies):
- baseline: the seed's consumer (bench/baselines/mns_seed_consumer.py, a process of its own: receive one
  message with a 5 s long poll, post one Slack message per event to one channel, delete — also when the
  post failed), against the same Slack emulator with the same rate limit (its buckets reset first). It
  runs on the first `baseline_events` bodies (default 2,000) within `baseline_seconds` (default 120).
  Its `events_per_second` counts, like ours, the events that reached Slack (an event it deleted after
  its post was refused is lost, not handled); `taken_per_second` is every event it took off the queue
  over the same time: "baseline": {"events": n, ...}.
- limit: the emulator's drain limit (bench/_mns_limit.py, a process of its own): threads each
  batch-receiving 16 and batch-deleting them with no processing at all, over all bodies, tried with 1, 2,
  4 and 8 threads and with as many as our workers consume with (`events.consumers` per worker); the
  fastest is `limit_events_per_second` ("limit": {"by_threads": …} shows each).
All three rates are timed alike, by the emulator: from the first message handed out to the last deleted.
`baseline_ratio` = ours ÷ baseline (target ≥ 20), `limit_ratio` = ours ÷ limit (target ≥ 0.5); ours must
lose and duplicate nothing.

Options: events=N instances=N dup_percent=N consumers=N (threads per worker) workers=N timeout=S
baseline_events=N baseline_seconds=S
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

from bench import start_worker

HEADLINE = ("events_per_second", "baseline_ratio", "limit_ratio")
DEFAULT_CONSUMERS = 2  # the policy's default `events.consumers`

ROUTES = [
    {"channel": "C_DEV", "events": ["Instance:StateChange"], "tags": {"env": "dev"}},
    {"channel": "C_ALERTS", "events": ["Instance:StateChange"], "tags": {"env": "prod"}},
]
STATES = ("Stopping", "Stopped", "Starting", "Running")
_PAIR = re.compile(r"(i-[a-z0-9]+)`?\)?\s+(?:\w+ )?→ \*?(\w+)")


def announced(slack) -> Counter:
    """(instance id, new state) of every state change visible in Slack: single messages, plus each line
    of every digest — from its attached file, or inline when the final digest lists everything."""
    files = {f.get("name"): (f.get("content") or b"").decode() for f in slack.files.values()}
    seen: Counter = Counter()
    for channel in list(slack.messages):
        for m in slack.channel_messages(channel):
            if m.text.startswith("ECS events digest"):
                digest_id = m.text.split(":", 1)[0].rsplit(" ", 1)[-1]
                content = files.get(f"ecs-events-{channel}-{digest_id}.txt")
                if content is None:
                    content = "\n".join(
                        b.get("text", {}).get("text", "") for b in m.blocks if "*All " in json.dumps(b)
                    )
                for line in content.splitlines():
                    found = _PAIR.search(line)
                    if found:
                        seen[found.groups()] += 1
            else:
                found = _PAIR.search(m.text)
                if found:
                    seen[found.groups()] += 1
    return seen


def message_call_times(slack) -> dict[str, list[float]]:
    """When each channel was sent a message call (chat.postMessage or chat.update, accepted or not) — a
    stricter measure than accepted posts alone."""
    out: dict[str, list[float]] = {}
    for call in list(slack.calls):
        if call.name in ("chat.postMessage", "chat.update"):
            try:
                channel = json.loads(call.request.body or b"{}").get("channel")
            except ValueError:
                continue
            out.setdefault(str(channel), []).append(call.request.received_at)
    return out


def compare(expected: Counter, seen: Counter) -> tuple[int, int]:
    lost = sum(max(0, n - seen.get(k, 0)) for k, n in expected.items())
    duplicates = sum(max(0, n - expected.get(k, 0)) for k, n in seen.items())
    return lost, duplicates


def settled(redis_url: str, quiet_since: float, quiet: float = 3.0) -> bool:
    """Outboxes empty, no digest open, and Slack quiet for `quiet` seconds."""
    from bot.store import open_store
    from handlers.events import keys

    store = open_store(redis_url, tempfile.gettempdir())
    try:
        for ch in store.hgetall(keys.CHANNELS):
            for box in (keys.outbox(ch), keys.urgent(ch)):
                if store.zrange_by_score(box, float("-inf"), float("inf"), limit=1):
                    return False
            if store.get(keys.channel_state(ch)) is not None:
                return False
    finally:
        store.close()
    return time.time() - quiet_since >= quiet


def worker_env(stack, data_dir: Path, redis_url: str, policy: dict) -> dict[str, str]:
    from sandbox.stack import sandbox_env

    policy_path = data_dir / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(policy))
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(sandbox_env(stack, data_dir, {"REDIS_URL": redis_url, "CHATOPS_CONFIG": str(policy_path)}))
    env["CHATOPS_LOG_LEVEL"] = "WARNING"
    return env


def make_events(count: int, instances: list[dict], dup_percent: float, seed: int = 7):
    """(bodies in queue order, expected Counter of (instance, state))."""
    from sandbox.mns_events import encode_body, state_change_event

    rng = random.Random(seed)
    start = time.time() - count / 1000.0
    bodies, expected = [], Counter()
    for k in range(count):
        inst = instances[k % len(instances)]
        state = STATES[(k // len(instances)) % len(STATES)]
        event = state_change_event(inst, state, shape="ab"[k % 2], when=start + k / 1000.0)
        body = encode_body(event, "base64" if k % 3 else "raw")
        bodies.append(body)
        expected[(inst["InstanceId"], state)] += 1
        if rng.random() * 100 < dup_percent:
            bodies.append(body)
    return bodies, expected


def body_keys(bodies: list[str]) -> Counter:
    """(instance id, new state) of each body, as the seed reads it."""
    from bench.baselines.mns_seed_consumer import parse

    out: Counter = Counter()
    for body in bodies:
        content = parse(body).get("content") or {}
        out[(content.get("resourceId") or content.get("instanceId"), content.get("state"))] += 1
    return out


def _subprocess_json(args: list[str], env: dict[str, str], timeout: float) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", *args], env=env, capture_output=True, text=True, timeout=timeout, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _refill(mns, bodies: list[str]) -> None:
    mns.first_receive_at = mns.last_delete_at = None
    for start in range(0, len(bodies), 1000):
        mns.send_many(bodies[start : start + 1000])


def _drained_seconds(mns) -> float:
    return (mns.last_delete_at or 0.0) - (mns.first_receive_at or 0.0)


def _ratelimited(calls) -> int:
    return sum(1 for c in calls if c.name == "chat.postMessage" and c.status == 429)


def _purge(mns) -> list[str]:
    """Drop what is left on the queue; their bodies."""
    with mns._cond:
        queue = mns.queue()
        left = list(queue.messages.values())
        for msg in left:
            queue._drop(msg)
    return [m.body for m in left]


def run_baseline(stack, env, bodies: list[str], seen_before: Counter, budget: float) -> dict:
    """The seed's consumer on `bodies` (the Slack emulator's rate limit as it is; buckets reset). What it
    did not get to within `budget` seconds is taken off the queue and left out of its sample."""
    slack, mns = stack.get("slack"), stack.get("mns")
    slack.set_rate_limit(slack.rate_limit_per_channel, burst=slack.rate_limit_burst)
    calls_before = len(slack.calls)
    _refill(mns, bodies)
    args = ["bench.baselines.mns_seed_consumer", env["MNS_ENDPOINT"], env["MNS_QUEUE"]]
    args += [env["SLACK_API_URL"], env["SLACK_NOTIFY_CHANNEL"], str(len(bodies)), str(budget)]
    out = _subprocess_json(args, env, budget + 60)
    seconds = _drained_seconds(mns)
    handled = Counter(bodies)
    handled.subtract(Counter(_purge(mns)))
    unique = [b for b, n in handled.items() if n > 0]  # a duplicate delivery is the same event
    lost, duplicates = compare(body_keys(unique), announced(slack) - seen_before)
    return {
        "events": len(unique),
        "messages": out["messages"],
        "seconds": round(seconds, 3),
        # what reached Slack: an event deleted after its post was refused is lost, not handled
        "events_per_second": round((len(unique) - lost) / seconds, 2) if seconds > 0 else 0,
        "taken_per_second": round(len(unique) / seconds, 1) if seconds > 0 else 0,
        "lost": lost,
        "duplicates": duplicates,
        "slack_429s": _ratelimited(slack.calls[calls_before:]),
    }


LIMIT_THREADS = (1, 2, 4, 8)  # the drain is tried with each (and with ours); the fastest is the limit


def run_limit(stack, env, bodies: list[str], events: int, threads: int, timeout: float) -> dict:
    """The emulator's drain limit: the fastest drain of all bodies by a client that does no processing,
    over several connection counts (more connections are not always faster: the emulator is one
    process). Each drain is timed by the emulator, as ours is."""
    mns = stack.get("mns")
    rates: dict[int, int] = {}
    for n in sorted({*LIMIT_THREADS, threads}):
        _refill(mns, bodies)
        args = ["bench._mns_limit", env["MNS_ENDPOINT"], env["MNS_QUEUE"], str(n)]
        out = _subprocess_json(args, env, timeout)
        seconds = _drained_seconds(mns)
        drained = seconds > 0 and mns.depth() == 0 and out["messages"] >= events
        rates[n] = round(events / seconds) if drained else 0
    best = max(rates, key=rates.get)
    return {
        "threads": best,
        "events_per_second": rates[best],
        "by_threads": {str(n): r for n, r in rates.items()},
    }


def stop_worker(worker: subprocess.Popen | None) -> None:
    if worker is not None and worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()


def run(options: dict) -> dict:
    from sandbox.slack_emulator import max_rate_per_second
    from sandbox.stack import EmulatorStack, redis_url_or_private

    count = int(options.get("events", 10_000))
    n_instances = int(options.get("instances", 500))
    dup_percent = float(options.get("dup_percent", 1))
    timeout = float(options.get("timeout", 300))
    baseline_events = int(options.get("baseline_events", 2000))
    baseline_seconds = float(options.get("baseline_seconds", 120))
    consumers = int(options.get("consumers", DEFAULT_CONSUMERS))
    processes = max(1, int(options.get("workers", 2)))
    redis_url, redis_server = redis_url_or_private()
    data_dir = Path(tempfile.mkdtemp(prefix="chatops-bench-events-"))
    stack = EmulatorStack(["slack", "mns", "ecs"]).start()
    workers: list[subprocess.Popen] = []
    try:
        slack, mns, ecs = stack.get("slack"), stack.get("mns"), stack.get("ecs")
        mns.record_calls = False
        slack.set_rate_limit(1.0, burst=1)
        envs = ("dev", "staging", "prod")
        ids = [
            ecs.add_instance(f"bench-{n:03d}", tags={"env": envs[n % 3], "app": "bench"})
            for n in range(n_instances)
        ]
        instances = [dict(ecs.instances[i]) for i in ids]
        bodies, expected = make_events(count, instances, dup_percent)
        policy = {
            "timezone": "Europe/Berlin",
            "routes": ROUTES,
            "events": {
                "wait_seconds": 1,
                "digest_quiet_seconds": 2.0,
                "claim_seconds": 30,
            },
            "auto_restart": {"enabled": False},
        }
        if "consumers" in options:  # default: the policy's (2 threads per worker)
            policy["events"]["consumers"] = consumers
        env = worker_env(stack, data_dir, redis_url, policy)
        workers = [start_worker(env, data_dir / f"worker{n}.log") for n in range(processes)]
        worker = workers[0]
        deadline = time.monotonic() + timeout
        # the events arrive at running workers, as in production: every consumer polls first
        ready_by = time.monotonic() + 60
        while mns.waiting_receives < consumers * processes and time.monotonic() < ready_by:
            time.sleep(0.05)
        _refill(mns, bodies)
        while mns.depth() > 0 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.05)
        drained = mns.depth() == 0
        seconds = (mns.last_delete_at or time.time()) - (mns.first_receive_at or time.time())
        while time.monotonic() < deadline and worker.poll() is None:
            last = slack.timeline[-1].seq if slack.timeline else 0
            quiet_since = time.time()
            time.sleep(0.5)
            if (slack.timeline[-1].seq if slack.timeline else 0) == last and settled(
                redis_url, quiet_since - 0.5, 0
            ):
                time.sleep(3.0)
                if (slack.timeline[-1].seq if slack.timeline else 0) == last:
                    break
        for w in workers:
            stop_worker(w)
        seen = announced(slack)
        lost, duplicates = compare(expected, seen)
        rate = max(
            (max_rate_per_second(times, 10.0) for times in message_call_times(slack).values()), default=0.0
        )
        ours_rate = round(count / seconds) if drained and seconds > 0 else 0
        ours_calls, ours_429s = len(slack.calls), _ratelimited(slack.calls)
        sample = bodies[:baseline_events]
        baseline = run_baseline(stack, env, sample, seen, baseline_seconds)
        limit = run_limit(stack, env, bodies, count, consumers * processes, timeout)
        baseline_ratio = ours_rate / baseline["events_per_second"] if baseline["events_per_second"] else None
        limit_ratio = ours_rate / limit["events_per_second"] if limit["events_per_second"] else None
        return {
            "events": count,
            "seconds": round(seconds, 3),
            "events_per_second": ours_rate,
            "slack_calls": ours_calls,
            "slack_429s": ours_429s,
            "lost": lost,
            "duplicates": duplicates,
            "max_channel_rate": round(rate, 3),
            "baseline": baseline,
            "limit_events_per_second": limit["events_per_second"],
            "limit": limit,
            "baseline_ratio": round(baseline_ratio, 1) if baseline_ratio is not None else None,
            "limit_ratio": round(limit_ratio, 3) if limit_ratio is not None else None,
            "targets": {
                "baseline_ratio_at_least_20": bool(baseline_ratio and baseline_ratio >= 20),
                "limit_ratio_at_least_0.5": bool(limit_ratio and limit_ratio >= 0.5),
                "no_loss_no_duplicates": drained and lost == 0 and duplicates == 0,
            },
            "settings": {
                "slack_rate_limit_per_channel": slack.rate_limit_per_channel,
                "slack_burst": slack.rate_limit_burst,
                "consumers": consumers,
                "workers": processes,
            },
        }
    finally:
        for w in workers:
            stop_worker(w)
        stack.stop()
        if redis_server is not None:
            redis_server.stop()
