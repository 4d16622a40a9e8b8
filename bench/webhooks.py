"""`chatops bench webhooks --json`: PagerDuty webhook deliveries against the web app on Redis.

20,000 signed V3 deliveries (30 % duplicates: a third of them sent at the same moment as their original
by another client, the rest later, as retries) from 32 concurrent keep-alive clients. Three servers run
on the same stack (gunicorn, gthread worker, 4 processes x 8 threads — one thread per client connection,
and less GIL contention per process than the Procfile's 2 x 8, which also works):
- app: the real app, `POST /pagerduty/webhook`, on Redis;
- bare: the same app (bot.web.WebApp: routing, body limit, metrics) with that route replaced by a
  trivial one answering 202 — the ratio is app / bare throughput;
- raw: a plain WSGI callable answering 202, reported in the detail line for reference.
The load runs in interleaved rounds (app, bare, raw, app, …) so that background load on a shared machine
hits all three alike; ignored `pagey.ping` deliveries warm each server up first. A non-2xx answer is
retried 50 ms later, as PagerDuty would. The unique events are `incident.triggered` for distinct incidents
plus `incident.acknowledged` for some of them; after the load a `chatops worker` drains the queue against
the Slack emulator, and each event's Slack effect is one chat.postMessage (the incident card, or the
thread reply of a later event), counted from the emulator's recorded calls.

Options (key=value): deliveries=20000 clients=32 duplicate_ratio=0.3 concurrent_share=0.33 ack_share=0.3
web_workers=4 web_threads=8 rounds=10 worker_threads=8 drain_timeout=300 gunicorn_config=PATH.
A detail line (stderr) gives each server's throughput and latency percentiles.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from pathlib import Path
from typing import Any

from sandbox import credentials

SECRET = credentials.PAGERDUTY_WEBHOOK_SECRET
PATH = "/pagerduty/webhook"
HEADLINE = ("throughput_ratio", "peer_throughput_ratio", "p99_ratio")


def bare_app():
    """The bare endpoint (gunicorn factory): the same app — bot.web.WebApp with its routing, body limit
    and metrics — in which POST /pagerduty/webhook is a trivial route that answers 202."""
    from bot.config import load_settings
    from bot.logs import configure_logging
    from bot.registry import Registry, RouteSpec
    from bot.services import Services
    from bot.web import HttpResponse, create_app

    settings = load_settings()
    configure_logging(settings.CHATOPS_LOG_LEVEL)
    registry = Registry.discover()
    trivial = RouteSpec("POST", PATH, lambda services, req: HttpResponse(202, b"{}"), 256 * 1024)
    registry.routes[("POST", PATH)] = trivial  # in place of the webhook's route, on purpose
    return create_app(Services(settings, registry=registry))


def raw_wsgi_app(environ, start_response):
    """A plain WSGI callable answering 202 (reported for reference: the server stack alone)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


# the deliveries -----------------------------------------------------------------------------------
def _event(event_type: str, number: int, occurred: str) -> dict[str, Any]:
    inc_id = f"QB{number:08d}"
    agent = {"id": "PBOB", "type": "user_reference", "summary": "Bob Operator"}
    return {
        "id": uuid.uuid4().hex.upper(),
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": occurred,
        "agent": agent if event_type != "incident.triggered" else None,
        "client": None,
        "data": {
            "id": inc_id,
            "type": "incident",
            "self": f"https://api.pagerduty.test/incidents/{inc_id}",
            "html_url": f"https://sandbox.pagerduty.test/incidents/{inc_id}",
            "number": number,
            "status": "triggered" if event_type == "incident.triggered" else "acknowledged",
            "incident_key": f"bench-{number}",
            "created_at": "2026-01-01T00:00:00Z",
            "title": f"Bench incident {number}",
            "service": {"id": "PSVC001", "type": "service_reference", "summary": "Alibaba Cloud Ops"},
            "assignees": [{"id": "PALICE", "type": "user_reference", "summary": "Alice Admin"}],
            "escalation_policy": {"id": "PEP001", "type": "escalation_policy_reference", "summary": "Ops"},
            "teams": [],
            "priority": None,
            "urgency": "high",
            "conference_bridge": None,
            "resolve_reason": None,
            "incident_type": {"name": "incident_default"},
        },
    }


def _request_bytes(host: str, body: bytes, webhook_id: str) -> bytes:
    from sandbox.pagerduty_webhooks import sign

    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"User-Agent: PagerDuty-Webhook/V3.0\r\nX-Webhook-Id: {webhook_id}\r\n"
        f"X-Webhook-Subscription: PBENCH1\r\nX-PagerDuty-Signature: {sign(body, [SECRET])}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def build_deliveries(
    n: int, duplicate_ratio: float, concurrent_share: float, ack_share: float, seed: int = 7
):
    """(request payloads in delivery order, number of unique deliveries, expected effects per kind).

    Every item gets a sort key: incident k triggers at k, its acknowledgement somewhere later; a
    concurrent duplicate sits right after its original, a retried one anywhere after it."""
    rng = random.Random(seed)
    unique = n - int(n * duplicate_ratio)
    acks = int(unique * ack_share)
    triggers = unique - acks
    keyed: list[tuple[float, bytes]] = []
    for number in range(1, triggers + 1):
        keyed.append((float(number), _payload("incident.triggered", number)))
    for number in rng.sample(range(1, triggers + 1), acks):
        keyed.append((number + rng.uniform(1, 500), _payload("incident.acknowledged", number)))
    duplicates = n - unique
    concurrent = int(duplicates * concurrent_share)
    originals = list(keyed)
    for i, (key, payload) in enumerate(rng.sample(originals, duplicates)):
        later = 1e-6 if i < concurrent else rng.uniform(1, triggers + 500 - key + 1)
        keyed.append((key + later, payload))
    keyed.sort(key=lambda kv: kv[0])
    return [payload for _, payload in keyed], unique, {"cards": triggers, "replies": acks}


def _payload(event_type: str, number: int) -> bytes:
    occurred = (
        "2026-01-01T00:00:00.000Z" if event_type == "incident.triggered" else "2026-01-01T00:05:00.000Z"
    )
    body = json.dumps({"event": _event(event_type, number, occurred)}).encode()
    return _request_bytes("127.0.0.1", body, str(uuid.uuid4()))


# the load -------------------------------------------------------------------------------------------
async def _load(
    port: int, deliveries: list[bytes], clients: int, retry_delay: float = 0.05, max_tries: int = 10
):
    """Send every delivery once from `clients` keep-alive connections; a non-2xx answer is sent again
    `retry_delay` later (at most `max_tries` times). Returns (latencies, status counts, elapsed)."""
    queue: deque[tuple[bytes, int]] = deque((d, 1) for d in deliveries)
    retrying = {"n": 0}
    latencies: list[float] = []
    statuses: Counter = Counter()
    loop = asyncio.get_running_loop()

    def requeue(item: tuple[bytes, int]) -> None:
        retrying["n"] -= 1
        queue.append(item)

    async def one_client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                if not queue:
                    if retrying["n"] == 0:
                        return
                    await asyncio.sleep(0.005)
                    continue
                payload, tries = queue.popleft()
                started = time.perf_counter()
                writer.write(payload)
                status_line = await reader.readline()
                length, close = 0, False
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value.strip())
                    elif name == "connection" and value.strip().lower() == "close":
                        close = True
                if length:
                    await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                status = int(status_line.split()[1]) if status_line else 0
                statuses[status] += 1
                if not 200 <= status < 300 and tries < max_tries:
                    retrying["n"] += 1
                    loop.call_later(retry_delay, requeue, (payload, tries + 1))
                if close or not status_line:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, statuses, time.perf_counter() - started


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


# processes ------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gunicorn(
    target: str,
    env: dict[str, str],
    workers: int,
    threads: int,
    worker_class: str = "gthread",
    config: str | None = None,
) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    binary = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    proc = subprocess.Popen(
        [
            binary,
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            worker_class,
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "30",
            "--backlog",
            "512",
            "--log-level",
            "warning",
            *(["--config", config] if config else []),
            target,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1"):
                    time.sleep(0.5)  # let every worker process finish importing
                    return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gunicorn did not start for {target}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _count_effects(slack) -> tuple[int, int]:
    """(chat.postMessage calls that succeeded, how many of them repeat an earlier effect)."""
    cards: Counter = Counter()
    replies: Counter = Counter()
    for call in slack.calls_named("chat.postMessage"):
        if call.status != 200 or not (call.response or {}).get("ok"):
            continue
        args = json.loads(call.request.body or b"{}")
        if args.get("thread_ts"):
            replies[(args["thread_ts"], args.get("text"))] += 1
        else:
            cards[(args.get("text") or "").split(" — ")[0]] += 1
    total = sum(cards.values()) + sum(replies.values())
    dup = sum(c - 1 for c in cards.values()) + sum(c - 1 for c in replies.values())
    return total, dup


def run(options: dict[str, str]) -> dict[str, Any]:
    from bot.queue import TaskQueue
    from bot.registry import Registry
    from sandbox.slack_emulator import SlackEmulator
    from sandbox.stack import redis_url_or_private

    n = int(options.get("deliveries", 20000))
    clients = int(options.get("clients", 32))
    web_workers = int(options.get("web_workers", 4))
    web_threads = int(options.get("web_threads", 8))
    redis_url, redis_server = redis_url_or_private()
    slack = SlackEmulator().start()
    data_dir = tempfile.mkdtemp(prefix="chatops-bench-")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(
        {
            "REDIS_URL": redis_url,
            "SLACK_API_URL": f"{slack.base_url}/api/",
            "SLACK_BOT_TOKEN": credentials.SLACK_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": credentials.SLACK_SIGNING_SECRET,
            "SLACK_NOTIFY_CHANNEL": "C_OPS",
            "PAGERDUTY_WEBHOOK_SECRETS": SECRET,
            "CHATOPS_DATA_DIR": data_dir,
            "CHATOPS_LOG_LEVEL": "WARNING",
            "CALENDAR_ICS_URLS": "",
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        }
    )
    deliveries, unique, expected = build_deliveries(
        n,
        float(options.get("duplicate_ratio", 0.3)),
        float(options.get("concurrent_share", 0.33)),
        float(options.get("ack_share", 0.3)),
    )
    rounds = int(options.get("rounds", 10))
    chunk = -(-len(deliveries) // rounds)
    phases = {
        "app": "bot.web:create_app()",
        "bare": "bench.webhooks:bare_app()",
        "raw": "bench.webhooks:raw_wsgi_app",
    }
    lat: dict[str, list[float]] = {k: [] for k in phases}
    elapsed: dict[str, float] = dict.fromkeys(phases, 0.0)
    statuses: Counter = Counter()
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    worker = None
    try:
        for name, target in phases.items():
            servers[name] = _gunicorn(
                target, env, web_workers, web_threads, config=options.get("gunicorn_config")
            )
        warmup = [_payload("pagey.ping", 0) for _ in range(300)]  # ignored events: no Redis, no effects
        for name in phases:
            asyncio.run(_load(servers[name][1], warmup, clients))
        # interleaved rounds: background noise on this machine hits app and bare alike
        for r in range(rounds):
            part = deliveries[r * chunk : (r + 1) * chunk]
            for name in phases:
                part_lat, part_statuses, part_elapsed = asyncio.run(_load(servers[name][1], part, clients))
                lat[name] += part_lat
                elapsed[name] += part_elapsed
                if name == "app":
                    statuses.update(part_statuses)
        for proc, _ in servers.values():
            _stop(proc)
        servers.clear()
        worker = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker", "--threads", options.get("worker_threads", "8")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        queue = TaskQueue(redis_url, Path(data_dir), Registry())  # only counts what is pending
        deadline = time.monotonic() + float(options.get("drain_timeout", 300))
        quiet_since = None
        while time.monotonic() < deadline:
            busy = queue.pending()
            if busy == 0 and _count_effects(slack)[0] >= unique:
                break
            if busy == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 10:
                    break
            else:
                quiet_since = None
            time.sleep(0.5)
        time.sleep(1.0)  # anything still in flight on the worker
        effects, duplicate_effects = _count_effects(slack)
    finally:
        for proc, _ in servers.values():
            _stop(proc)
        if worker is not None:
            _stop(worker)
        slack.stop()
        if redis_server is not None:
            redis_server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    rps = {name: len(lat[name]) / elapsed[name] for name in phases}
    detail = {
        "app_requests": len(lat["app"]),
        "app_statuses": dict(statuses),
        "expected_effects": expected,
        "server": f"gunicorn gthread {web_workers}x{web_threads}",
    }
    for name in phases:
        detail[f"{name}_rps"] = round(rps[name])
        detail[f"{name}_p50_ms"] = round(_percentile(lat[name], 0.5) * 1000, 2)
        detail[f"{name}_p99_ms"] = round(_percentile(lat[name], 0.99) * 1000, 2)
    print(json.dumps({"detail": detail}), file=sys.stderr)
    app_lat = lat["app"]
    app_tput, bare_tput = rps["app"], rps["bare"]
    return {
        "deliveries": n,
        "unique": unique,
        "throughput_ratio": round(app_tput / bare_tput, 3),
        "p50_ms": round(_percentile(app_lat, 0.5) * 1000, 2),
        "p99_ms": round(_percentile(app_lat, 0.99) * 1000, 2),
        "slack_effects": effects,
        "duplicate_effects": duplicate_effects,
    }
