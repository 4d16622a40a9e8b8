"""`chatops bench schedules`: one simulated day of office-hours schedules — ours vs the seed's cron scripts.

Set-up (the same for all three runs, each on its own fresh ECS emulator built by the sandbox's factory):
5,000 instances tagged `Schedule=<name>` over 20 schedules (250 each, interleaved), `latency` seconds per
ECS call (default 0.05), `transition` seconds from Stopping to Stopped / Starting to Running (default
1.0, as in `bench fleet`), no throttling. Schedule k runs mon-fri in one of Asia/Tokyo, Europe/Berlin,
America/New_York and UTC, starting at 07:00 + 15·k min and stopping at 17:00 + 20·k min local time. The
day is 24 h from midnight UTC of `day` (default a Wednesday away from any DST change): 40 transitions,
10,000 instance transitions. Every instance starts in its schedule's desired state.

- ours: the whole bot in this process (`sandbox.stack.BotStack` with a real Worker running the power
  jobs, against a real Redis), its clock a `ManualClock`. Before the day one tick records the
  transitions already past (a worker that ran yesterday; its calls are reported as `priming_calls`, not
  counted). Then the clock moves minute by minute over the day and each minute runs the schedules'
  periodic jobs as production runs them every minute: `schedules.reconcile` (the engine), then, once
  the jobs it started have finished (every power job done, as the scenario test's `settle()` waits),
  `schedules.warn` (the pre-stop warning, which reads the members too). The worker's own real-time
  periodic scheduler stays on; at the simulated minute it finds nothing left to do. Its look for
  instances tagged with an unknown schedule (`schedules.inventory`, every 10 real minutes) lists the
  tagged instances in the priming and then counts them, one call a run, while the count stays the same.
- baseline / baseline_paged: `bench/baselines/schedules_naive.py`, the seed's two UTC cron triggers per
  schedule (first page only, then with the paging loop added). Each invocation runs at its UTC time in
  order — without simulating the idle minutes in between. To keep the wall time down, the schedules
  run side by side: each schedule's invocations run one after the other in a thread of its own, as
  separate timer-triggered functions would; the instances of one schedule are touched only by its own
  triggers and nothing throttles, so this changes no call and no outcome, only the wall time
  (2 × 275 calls × 50 ms ≈ 28 s per schedule instead of 40 × 275 × 50 ms ≈ 9 min for the day).

`api_calls`: every request the run's ECS emulator received during the day. `missed_transitions`: for each
(transition × instance of its schedule), the instance was not in the desired state once that transition
had been processed — for ours after the tick of its minute and the jobs it started, for the baselines
after every invocation due by then; in both cases once the emulator has no instance of that schedule
still Starting / Stopping (read in the emulator, no API call). The expected transitions are computed here
from the zones directly, independently of `handlers.schedules.model` (`model_agrees` compares them).

Options (key=value): instances, schedules, latency, transition, day (YYYY-MM-DD, a UTC date).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from bench import loopback_only

UTC = dt.UTC
HEADLINE = ("calls_ratio", "ours.api_calls", "ours.missed_transitions")
ZONES = ("Asia/Tokyo", "Europe/Berlin", "America/New_York", "UTC")
WEEKDAYS = frozenset(range(5))  # mon-fri
TAG = "Schedule"
IN_FLIGHT = ("Starting", "Stopping")
STATUS = {"running": "Running", "stopped": "Stopped"}
POWER = ("StartInstances", "StopInstances")


# The set-up and the expected outcome (pure) ------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    name: str
    zone: str
    start: dt.time
    stop: dt.time  # later than start on the same day


@dataclass(frozen=True)
class Due:
    at: dt.datetime  # UTC
    schedule: str
    state: str  # "running" | "stopped"


def make_specs(count: int, prefix: str = "bench") -> list[Spec]:
    """Schedule k: zone ZONES[k % 4], mon-fri, 07:00 + 15·k min to 17:00 + 20·k min local time."""
    if count > 20:
        raise ValueError("at most 20 schedules (the last one stops at 23:20)")
    out = []
    for k in range(count):
        start = 7 * 60 + 15 * k
        stop = 17 * 60 + 20 * k
        out.append(
            Spec(
                f"{prefix}-{k:02d}",
                ZONES[k % len(ZONES)],
                dt.time(start // 60, start % 60),
                dt.time(stop // 60, stop % 60),
            )
        )
    return out


def policy_for(specs: list[Spec]) -> dict:
    return {
        "timezone": "UTC",
        "schedule_tag": TAG,
        "schedules": {
            s.name: {
                "timezone": s.zone,
                "periods": [
                    {"days": "mon-fri", "start": s.start.strftime("%H:%M"), "stop": s.stop.strftime("%H:%M")}
                ],
            }
            for s in specs
        },
    }


def expected_transitions(specs: list[Spec], t0: dt.datetime, t1: dt.datetime) -> list[Due]:
    """Every start and stop with t0 < at <= t1, oldest first (ties by schedule name)."""
    out = []
    for s in specs:
        zone = ZoneInfo(s.zone)
        first = t0.astimezone(zone).date() - dt.timedelta(days=1)
        last = t1.astimezone(zone).date() + dt.timedelta(days=1)
        day = first
        while day <= last:
            if day.weekday() in WEEKDAYS:
                for local, state in ((s.start, "running"), (s.stop, "stopped")):
                    at = dt.datetime.combine(day, local, tzinfo=zone).astimezone(UTC)
                    if t0 < at <= t1:
                        out.append(Due(at, s.name, state))
            day += dt.timedelta(days=1)
    return sorted(out, key=lambda d: (d.at, d.schedule))


def desired_at(spec: Spec, at: dt.datetime) -> str:
    local = at.astimezone(ZoneInfo(spec.zone))
    running = local.weekday() in WEEKDAYS and spec.start <= local.time() < spec.stop
    return "running" if running else "stopped"


def model_transitions(specs: list[Spec], t0: dt.datetime, t1: dt.datetime) -> list[Due]:
    """The same as the schedule model computes it."""
    from handlers.schedules.model import Schedule, compile_schedule

    out = []
    for name, raw in policy_for(specs)["schedules"].items():
        cs = compile_schedule(name, Schedule.model_validate(raw), "UTC")
        out.extend(Due(t.at, name, t.state) for t in cs.transitions(t0, t1))
    return sorted(out, key=lambda d: (d.at, d.schedule))


def missed(statuses: dict[str, str | None], ids: list[str], state: str) -> int:
    return sum(1 for i in ids if statuses.get(i) != STATUS[state])


def by_api(calls) -> dict[str, int]:
    return dict(sorted(Counter(c.name for c in calls).items()))


def _ids(call) -> frozenset[str]:
    q = call.request.query
    if "InstanceIds" in q:
        return frozenset(json.loads(q["InstanceIds"]))
    return frozenset(v for k, v in q.items() if k.startswith("InstanceId."))


def purposes(calls, warning_calls: set[int]) -> dict[str, int]:
    """Our calls by purpose. Tag listings are the members of a schedule, read by the engine when a
    transition is due, or the count of its running instances read by the warning before a stop
    (`warning_calls`: their indexes). A power job may read each batch by id before its
    Start/StopInstances (the refresh that skips instances already there): the latest earlier read by id
    covering the batch's ids since the listing the job was planned from; every other read by id is a
    wait poll."""
    out: Counter = Counter()
    refresh: set[int] = set()
    for n, c in enumerate(calls):
        if c.name not in POWER:
            continue
        sent = _ids(c)
        for m in range(n - 1, -1, -1):
            prior = calls[m]
            if prior.name == "DescribeInstances" and "InstanceIds" not in prior.request.query:
                break  # the listing the job was planned from: reads before it belong to earlier jobs
            if m not in refresh and prior.name == "DescribeInstances" and sent <= _ids(prior):
                refresh.add(m)
                break
    for n, c in enumerate(calls):
        if c.name == "DescribeInstances" and "InstanceIds" not in c.request.query:
            out["warning_counts" if n in warning_calls else "engine_member_lookups"] += 1
        elif c.name == "DescribeInstances":
            out["job_refresh_by_id" if n in refresh else "job_wait_polls"] += 1
        elif c.name in POWER:
            out["job_power"] += 1
        else:
            out[c.name] += 1
    return dict(sorted(out.items()))


# Fleet --------------------------------------------------------------------------------------------------


def build_fleet(ecs, specs: list[Spec], instances: int, t0: dt.datetime) -> dict[str, list[str]]:
    """`instances` more instances in the emulator, instance n owned by schedule n % len(specs), each in
    its schedule's desired state at t0. Returns schedule → ids."""
    ids = ecs.seed_fleet(instances, status="Running", name_prefix="sch-")
    members: dict[str, list[str]] = {s.name: [] for s in specs}
    for n, iid in enumerate(ids):
        spec = specs[n % len(specs)]
        ecs.instances[iid]["Tags"][TAG] = spec.name
        members[spec.name].append(iid)
        if desired_at(spec, t0) == "stopped":
            ecs.set_status(iid, "Stopped")
    return members


def wait_quiet(ecs, ids: list[str], timeout: float) -> bool:
    """Until none of `ids` is Starting / Stopping in the emulator (no API call)."""
    deadline = time.monotonic() + timeout
    while True:
        if not any(s in IN_FLIGHT for s in ecs.statuses(ids).values()):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


# Ours ---------------------------------------------------------------------------------------------------


def run_ours(
    specs, instances, t0, t1, due, latency, transition, redis_url, settle_timeout: float = 300.0
) -> dict:
    from bot.clock import ManualClock
    from bot.pipeline.jobs import ACTIVE
    from handlers.schedules.engine import reconcile, report_unknown_schedules
    from handlers.schedules.warnings import warn_before_stops
    from sandbox.stack import BotStack

    data_dir = Path(tempfile.mkdtemp(prefix="chatops-bench-schedules-"))
    policy_path = data_dir / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(policy_for(specs)))
    clock = ManualClock(start=t0.timestamp())
    bot = BotStack(
        data_dir=data_dir / "bot",
        env={"REDIS_URL": redis_url, "CHATOPS_CONFIG": str(policy_path)},
        emulators=["slack", "ecs"],
        clock=clock,
    )
    with bot:
        services, ecs = bot.services, bot.emulator("ecs")
        members = build_fleet(ecs, specs, instances, t0)
        ecs.transition_seconds = transition
        store = services.store
        late = 0

        def settle() -> None:
            nonlocal late
            deadline = time.monotonic() + settle_timeout
            while store.zrange_by_score(ACTIVE, 1, float("inf")):
                if time.monotonic() >= deadline:
                    late += 1
                    return
                time.sleep(0.02)

        reconcile(services)  # priming: the worker that ran yesterday
        settle()
        warn_before_stops(services)
        report_unknown_schedules(services)  # its look for unknown schedules: a listing, then counts
        priming = len(ecs.calls)
        ecs.reset_calls()
        ecs.latency = latency
        dues: dict[int, list[Due]] = {}
        for d in due:
            dues.setdefault(int((d.at - t0).total_seconds() // 60), []).append(d)
        warning_calls: set[int] = set()
        misses = checked = acting_ticks = 0
        started = time.monotonic()
        for minute in range(1, int((t1 - t0).total_seconds() // 60) + 1):
            first = len(ecs.calls)
            clock.advance(t0.timestamp() + 60 * minute - clock.time())
            reconcile(services)
            settle()
            jobs_done = len(ecs.calls)
            warn_before_stops(services)
            calls = ecs.calls
            warning_calls.update(range(jobs_done, len(calls)))
            acting_ticks += any(c.name in POWER for c in calls[first:jobs_done])
            for d in dues.get(minute, []):
                ids = members[d.schedule]
                wait_quiet(ecs, ids, 3 * transition + 5)
                misses += missed(ecs.statuses(ids), ids, d.state)
                checked += len(ids)
        seconds = time.monotonic() - started
        calls = list(ecs.calls)
        slack = bot.emulator("slack")
        return {
            "api_calls": len(calls),
            "missed_transitions": misses,
            "instance_transitions_checked": checked,
            "calls_by_api": by_api(calls),
            "calls_by_purpose": purposes(calls, warning_calls),
            "ticks_with_power_jobs": acting_ticks,
            "throttled_or_failed_calls": sum(1 for c in calls if c.status != 200),
            "priming_calls": priming,
            "settle_timeouts": late,
            "slack_messages_posted": len(slack.calls_named("chat.postMessage")),
            "wall_seconds": round(seconds, 1),
        }


# Baselines ----------------------------------------------------------------------------------------------


def run_baseline(specs, instances, t0, t1, due, latency, transition, paged: bool) -> dict:
    from bench.baselines.schedules_naive import NaiveScheduler, cron_triggers
    from sandbox import credentials
    from sandbox.stack import EmulatorStack

    stack = EmulatorStack(["ecs"]).start()
    try:
        ecs = stack.get("ecs")
        members = build_fleet(ecs, specs, instances, t0)
        ecs.transition_seconds = transition
        ecs.reset_calls()
        ecs.latency = latency
        invocations: dict[str, list] = {s.name: [] for s in specs}
        for s in specs:
            for trigger in cron_triggers(s.name, s.zone, WEEKDAYS, s.start, s.stop, deployed=t0.date()):
                for day in (t0.date(), t1.date()):
                    if trigger.fires_on(day) and t0 < trigger.at(day) <= t1:
                        invocations[s.name].append((trigger.at(day), trigger))
        results: dict[str, tuple[int, int, list[str]]] = {}

        def one_schedule(spec: Spec) -> None:
            pending = sorted(invocations[spec.name], key=lambda x: x[0])
            ids = members[spec.name]
            misses = checked = 0
            errors: list[str] = []

            def fire(trigger) -> None:
                naive = NaiveScheduler(
                    ecs.base_url,
                    credentials.ALIBABA_ACCESS_KEY_ID,
                    credentials.ALIBABA_ACCESS_KEY_SECRET,
                    credentials.REGION_ID,
                    tag_key=TAG,
                    paged=paged,
                )
                naive.fire(trigger)
                errors.extend(naive.errors)

            for d in (d for d in due if d.schedule == spec.name):
                while pending and pending[0][0] <= d.at:
                    fire(pending.pop(0)[1])
                wait_quiet(ecs, ids, 3 * transition + 5)
                misses += missed(ecs.statuses(ids), ids, d.state)
                checked += len(ids)
            for _, trigger in pending:  # a trigger after the last transition (a cron that drifted)
                fire(trigger)
            results[spec.name] = (misses, checked, errors)

        started = time.monotonic()
        threads = [threading.Thread(target=one_schedule, args=(s,), name=f"cron-{s.name}") for s in specs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.monotonic() - started
        calls = list(ecs.calls)
        errors = [e for r in results.values() for e in r[2]]
        return {
            "api_calls": len(calls),
            "missed_transitions": sum(r[0] for r in results.values()),
            "instance_transitions_checked": sum(r[1] for r in results.values()),
            "calls_by_api": by_api(calls),
            "invocations": sum(len(v) for v in invocations.values()),
            "errors": len(errors),
            "error_codes": dict(Counter(e.split(": ", 1)[-1] for e in errors)),
            "wall_seconds": round(seconds, 1),
            "page_size": 10,
        }
    finally:
        stack.stop()


# Entry point --------------------------------------------------------------------------------------------


def run(options: dict[str, str]) -> dict:
    from sandbox.stack import redis_url_or_private

    loopback_only()
    instances = int(options.get("instances", 5000))
    count = int(options.get("schedules", 20))
    latency = float(options.get("latency", 0.05))
    transition = float(options.get("transition", 1.0))
    day = dt.date.fromisoformat(options.get("day", "2026-06-10"))
    t0 = dt.datetime.combine(day, dt.time(0, 0), tzinfo=UTC)
    t1 = t0 + dt.timedelta(days=1)
    # Fresh names per run: a shared REDIS_URL may hold what an earlier run left (acted-on transitions).
    specs = make_specs(count, prefix="bench" + secrets.token_hex(3))
    due = expected_transitions(specs, t0, t1)
    model_agrees = due == model_transitions(specs, t0, t1)

    redis_url, redis_server = redis_url_or_private()
    try:
        ours = run_ours(specs, instances, t0, t1, due, latency, transition, redis_url)
    finally:
        if redis_server is not None:
            redis_server.stop()
    baseline = run_baseline(specs, instances, t0, t1, due, latency, transition, paged=False)
    baseline_paged = run_baseline(specs, instances, t0, t1, due, latency, transition, paged=True)
    ratio = baseline_paged["api_calls"] / ours["api_calls"] if ours["api_calls"] else None
    return {
        "instances": instances,
        "ours": ours,
        "baseline": baseline,
        "baseline_paged": baseline_paged,
        "calls_ratio": round(ratio, 2) if ratio is not None else None,
        "targets": {
            "calls_ratio_at_least_25": bool(ratio is not None and ratio >= 25),
            "ours_missed_zero": ours["missed_transitions"] == 0,
        },
        "setup": {
            "schedules": count,
            "transitions": len(due),
            "model_agrees": model_agrees,
            "day_utc": day.isoformat(),
            "latency_s": latency,
            "transition_s": transition,
            "throttle_qps": None,
        },
    }
