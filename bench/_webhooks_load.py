"""The webhooks benchmark's machinery: signed deliveries, the keep-alive load, gunicorn servers, and a
drain of the queue by a worker process while counting its Slack effects (bench/webhooks.py runs it)."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox import credentials

SECRET = credentials.PAGERDUTY_WEBHOOK_SECRET
PATH = "/pagerduty/webhook"


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
        keyed.append((float(number), signed_payload("incident.triggered", number)))
    for number in rng.sample(range(1, triggers + 1), acks):
        keyed.append((number + rng.uniform(1, 500), signed_payload("incident.acknowledged", number)))
    duplicates = n - unique
    concurrent = int(duplicates * concurrent_share)
    originals = list(keyed)
    for i, (key, payload) in enumerate(rng.sample(originals, duplicates)):
        later = 1e-6 if i < concurrent else rng.uniform(1, triggers + 500 - key + 1)
        keyed.append((key + later, payload))
    keyed.sort(key=lambda kv: kv[0])
    return [payload for _, payload in keyed], unique, {"cards": triggers, "replies": acks}


def signed_payload(event_type: str, number: int) -> bytes:
    occurred = (
        "2026-01-01T00:00:00.000Z" if event_type == "incident.triggered" else "2026-01-01T00:05:00.000Z"
    )
    body = json.dumps({"event": _event(event_type, number, occurred)}).encode()
    return _request_bytes("127.0.0.1", body, str(uuid.uuid4()))


# the load -------------------------------------------------------------------------------------------
async def load(
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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


# processes ------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn(
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


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def count_effects(slack) -> tuple[int, int]:
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


def drain(
    command: list[str],
    env: dict[str, str],
    slack,
    unique: int,
    pending: Callable[[], int],
    timeout: float,
    quiet: float = 10.0,
) -> dict[str, Any]:
    """Start the worker `command`, wait until the Slack emulator has seen `unique` effects (or the queue
    has been empty and the count unchanged for `quiet` seconds), stop it and count. `seconds` runs from
    the worker's start to the last new effect."""
    started = time.monotonic()
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = started + timeout
        seen, last_change = 0, started
        while time.monotonic() < deadline:
            now_seen = len(slack.calls_named("chat.postMessage"))
            if now_seen != seen:
                seen, last_change = now_seen, time.monotonic()
            if seen >= unique and pending() == 0:
                break
            if time.monotonic() - last_change > quiet and pending() == 0:
                break
            time.sleep(0.2)
        time.sleep(1.0)  # anything still in flight on the worker
        if len(slack.calls_named("chat.postMessage")) != seen:
            last_change = time.monotonic()
    finally:
        stop(worker)
    effects, duplicates = count_effects(slack)
    seconds = max(last_change - started, 1e-6)
    return {
        "effects": effects,
        "duplicate_effects": duplicates,
        "drain_s": round(seconds, 1),
        "drain_per_s": round(effects / seconds),
    }


def python_module(*args: str) -> list[str]:
    """A command line running a module of this interpreter."""
    return [sys.executable, "-m", *args]
