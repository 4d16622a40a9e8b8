"""`chatops bench fleet`: stop the 1,000 instances carrying a tag among 1,200 — ours vs the naive original.

Both run against their own fresh ECS emulator (same fleet, same knobs): `latency` seconds per call
(default 0.05), per-API throttling at `qps` calls per second (default 20, answered Throttling.User), and
`transition` seconds from Stopping to Stopped (default 1.0). Both end when every instance they stopped
reads Stopped.

- ours: the `ecs.power` job's ECS work for the plan the preview resolved (`execute_plan`: per batch of
  100 a DescribeInstances by id to skip instances already stopped, then StopInstances with SuccessFirst,
  batches concurrent under the per-API token bucket; then the wait). The preview's own lookup (paged
  DescribeInstances by tag, before anyone presses Confirm) is reported separately under "preview".
- baseline: `bench/baselines/naive_fleet.py` — paged DescribeInstances, one StopInstance per instance,
  sequential, no retry; then it polls its listing until everything reads Stopped.

`api_calls` are the requests each emulator received (retries included). Ours runs with the policy's
default `batch_concurrency` (10 batches in flight, still under the per-API token bucket) unless
`concurrency` says otherwise; like the job, it sends the batches as the preview read them when the plan
is at most `FRESH_SECONDS` old (it is: someone presses Confirm after `CONFIRM_PAUSE`).

The floor (`floor_seconds`): the least wall time any client could take for the measured work under the
emulator's limits (sandbox/acs.py, sandbox/ecs_emulator.py). The emulator sleeps `latency` (L) in every
call before it looks at anything, then admits at most `qps` (q) calls per API in any sliding second
(a refused call still paid L), then acts: StopInstances sets Stopping and schedules Stopped `transition`
(T) seconds later; DescribeInstances reads the states after its own L. With the plan resolved, a client
needs at least B = ⌈N/100⌉ StopInstances calls (100 ids each, SuccessFirst reports per instance those that
changed since the preview, so no read is needed first) and, per batch, one DescribeInstances by id that
reads Stopped. Calls of one API in flight at once are free; only the admission window spaces them: the
k-th StopInstances (k = 0..B−1) can act no earlier than L + ⌊k/q⌋, so the last batch reads Stopped no
earlier than L + ⌊(B−1)/q⌋ + T (its read sent just then returns at once: it pays its L before it reads,
the reads of the other batches fit the DescribeInstances window beside it). Hence

    floor_seconds = L + ⌊(B − 1) / q⌋ + T            (1.05 s with the defaults: 0.05 + 0 + 1.0)

Client-side time (signing, parsing, thread hand-offs) counts as zero, so no client reaches it exactly.
The preview's lookup is floored the same way under "preview": its P = ⌈matched/100⌉ pages of
DescribeInstances by tag are sequential (each needs the previous NextToken) and each pays L, and page k is
admitted no earlier than ⌊k/q⌋: preview floor = max(P·L, ⌊(P − 1)/q⌋ + L).
"""

from __future__ import annotations

import math
import time

from bench import loopback_only
from bench.baselines.naive_fleet import NaiveFleet
from bot.adapters.ecs import build_adapter
from bot.config import load_settings
from bot.policy import EcsPolicy
from handlers.ecs.plan import build_plan
from handlers.ecs.power_job import FRESH_SECONDS, execute_plan
from handlers.ecs.selectors import PowerOptions, parse_selector
from sandbox import credentials
from sandbox.ecs_emulator import EcsEmulator

TAG = ("bench", "target")
HEADLINE = ("ours.seconds", "speedup", "floor_ratio")
CONFIRM_PAUSE = 1.0


def _emulator(
    instances: int, fleet: int, latency: float, qps: float, transition: float
) -> tuple[EcsEmulator, list[str]]:
    emu = EcsEmulator().start()
    targets = emu.seed_fleet(instances, extra_tags=dict([TAG]), status="Running", name_prefix="t-")
    emu.seed_fleet(fleet - instances, status="Running", name_prefix="o-")
    emu.latency, emu.throttle_qps, emu.transition_seconds = latency, qps, transition
    return emu, targets


def _stopped(emu: EcsEmulator, ids: list[str]) -> int:
    return sum(1 for s in emu.statuses(ids).values() if s == "Stopped")


def run_ours(
    instances: int, fleet: int, latency: float, qps: float, transition: float, concurrency: int
) -> dict:
    emu, targets = _emulator(instances, fleet, latency, qps, transition)
    try:
        settings = load_settings(
            {
                "ECS_ENDPOINT": emu.base_url,
                "ALIBABA_CLOUD_ACCESS_KEY_ID": credentials.ALIBABA_ACCESS_KEY_ID,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": credentials.ALIBABA_ACCESS_KEY_SECRET,
                "ALIBABA_CLOUD_REGION_ID": credentials.REGION_ID,
            }
        )
        adapter = build_adapter(settings, EcsPolicy(api_rate_per_second=qps, batch_concurrency=concurrency))
        selector = parse_selector(f"tag:{TAG[0]}={TAG[1]}")
        started = time.monotonic()
        found = adapter.describe_instances(tags=selector.tag_filter())
        plan = build_plan(
            "stop",
            selector,
            PowerOptions(),
            found,
            plan_id="bench",
            region=credentials.REGION_ID,
            requester="bench",
            channel=None,
            now=time.time(),
            ttl_seconds=600,
        )
        preview = {
            "seconds": round(time.monotonic() - started, 3),
            "api_calls": len(emu.calls),
            "matched": len(found),
        }
        time.sleep(CONFIRM_PAUSE)  # someone reads the preview and presses Confirm
        emu.reset_calls()
        client_calls_before = adapter.api_calls
        started = time.monotonic()
        fresh = time.time() - plan.created_at <= FRESH_SECONDS  # as the job decides it
        final = execute_plan(adapter, plan, wait_timeout=600, fresh=fresh)
        seconds = time.monotonic() - started
        calls = emu.calls
        return {
            "seconds": round(seconds, 3),
            "api_calls": len(calls),
            "stopped": _stopped(emu, targets),
            "reported_done": sum(1 for r in final if r.outcome == "done"),
            "calls_by_api": _by_api(calls),
            "client_counted_calls": adapter.api_calls - client_calls_before,
            "preview": preview,
            "sent_as_read": fresh,
        }
    finally:
        emu.stop()


def run_baseline(instances: int, fleet: int, latency: float, qps: float, transition: float) -> dict:
    emu, targets = _emulator(instances, fleet, latency, qps, transition)
    try:
        naive = NaiveFleet(
            emu.base_url,
            credentials.ALIBABA_ACCESS_KEY_ID,
            credentials.ALIBABA_ACCESS_KEY_SECRET,
            credentials.REGION_ID,
        )
        started = time.monotonic()
        naive.stop_by_tag(*TAG)
        seconds = time.monotonic() - started
        return {
            "seconds": round(seconds, 3),
            "api_calls": len(emu.calls),
            "stopped": _stopped(emu, targets),
            "errors": len(naive.errors),
            "calls_by_api": _by_api(emu.calls),
        }
    finally:
        emu.stop()


def floor_seconds(instances: int, latency: float, qps: float, transition: float) -> float:
    """The least wall time of the measured work (module docstring): L + ⌊(B − 1)/q⌋ + T."""
    batches = max(1, math.ceil(instances / 100))
    return latency + math.floor((batches - 1) / qps) + transition


def preview_floor_seconds(matched: int, latency: float, qps: float) -> float:
    """The least wall time of the preview's paged lookup: max(P·L, ⌊(P − 1)/q⌋ + L)."""
    pages = max(1, math.ceil(matched / 100))
    return max(pages * latency, math.floor((pages - 1) / qps) + latency)


def _by_api(calls) -> dict[str, int]:
    out: dict[str, int] = {}
    for call in calls:
        out[call.name] = out.get(call.name, 0) + 1
    return out


def run(options: dict[str, str]) -> dict:
    loopback_only()
    instances = int(options.get("instances", 1000))
    fleet = max(instances, int(options.get("fleet", 1200)))
    latency = float(options.get("latency", 0.05))
    qps = float(options.get("qps", 20))
    transition = float(options.get("transition", 1.0))
    concurrency = int(options.get("concurrency", EcsPolicy().batch_concurrency))
    ours = run_ours(instances, fleet, latency, qps, transition, concurrency)
    baseline = run_baseline(instances, fleet, latency, qps, transition)
    budget = 2 * math.ceil(instances / 100) + 10
    speedup = baseline["seconds"] / ours["seconds"] if ours["seconds"] else None
    floor = floor_seconds(instances, latency, qps, transition)
    floor_ratio = ours["seconds"] / floor
    ours["preview"]["floor_seconds"] = round(
        preview_floor_seconds(ours["preview"]["matched"], latency, qps), 3
    )
    return {
        "instances": instances,
        "ours": ours,
        "baseline": baseline,
        "speedup": round(speedup, 1) if speedup else None,
        "floor_seconds": round(floor, 3),
        "floor_ratio": round(floor_ratio, 3),
        "targets": {
            "floor_ratio_at_most_1.25": floor_ratio <= 1.25,
            "speedup_at_least_30": bool(speedup and speedup >= 30),
            "ours_api_calls_at_most": budget,
            "ours_api_calls_ok": ours["api_calls"] <= budget,
            "both_stopped_all": ours["stopped"] == instances and baseline["stopped"] == instances,
        },
        "settings": {
            "fleet": fleet,
            "latency_s": latency,
            "throttle_qps_per_api": qps,
            "transition_s": transition,
            "concurrency": concurrency,
        },
    }
