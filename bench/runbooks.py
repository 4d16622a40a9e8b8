"""`chatops bench runbooks`: many runs of a multi-step runbook at once — the engine's overhead.

Set-up: the emulators, the web app and the store in this process (`sandbox.stack.BotStack`), and a real
`chatops worker` process of its own with `threads` threads, as deployed (so the engine does not share
an interpreter with the emulators it drives), on a real Redis. `runs` (default 50) instances, one per
run, each its own tag
`bench=gN`. One runbook, `concurrency: runs`, whose `steps` (default 5) follow `mix` (default `run`:
every step a Cloud Assistant run of `sleep SECONDS` on the run's instance; `wait`: every step a
`wait: SECONDS s`; `alternate`: run, wait, run, …). `seconds` (default 3) is each step's own duration,
what the emulator takes for the command (its `sleep N` takes N seconds) or the wait's length.

All runs are submitted at once through the pipeline (as a cron or an event trigger does: a non-user
origin, no buttons). A run's wall time is from its submission to its job's end (the job record's
`created_at` → `finished_at`); its overhead is that ÷ the sum of its steps' own durations: a wait step's
length, and a run step's time in Cloud Assistant as the emulator records it (from RunCommand accepted
to the instance's finish: `sleep 3` plus the agent's pick-up, about 0.1 s).
`lost_runs`: runs that did not end succeeded within the deadline. `duplicate_steps`: RunCommand calls
beyond one per run step (the emulator counts them).

The floor (`floor`, with `mix=run`): the same runs by `bench/baselines/runbook_floor.py`, a process of
its own that only sends each step's RunCommand and looks at it when it must have ended (it knows the
command's time), then every 50 ms: no record, no lease, no Slack, no rate limit. Its overheads are
measured as ours are, on instances of its own in the same emulator, after ours; `floor_ratio` is our
median ÷ its median, what the engine adds over the least any client pays on this machine.

Options (key=value): runs, steps, seconds, mix, threads, latency (per ECS call, default 0), rate (the
bot's own per-API call rate, `ecs.api_rate_per_second`, default 20 as in the policy), floor (0: skip).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench import loopback_only, start_worker

HEADLINE = ("overhead_median", "overhead_p99", "floor.overhead_median", "lost_runs")


def _steps(count: int, seconds: float, mix: str) -> list[dict]:
    kinds = {"run": ["run"], "wait": ["wait"], "alternate": ["run", "wait"]}[mix]
    out = []
    for n in range(count):
        if kinds[n % len(kinds)] == "run":
            out.append(
                {"run": f"sleep {seconds:g}", "selector": "tag:bench={{ group }}", "timeout_seconds": 600}
            )
        else:
            out.append({"wait": f"{int(seconds)}s"})
    return out


def worker_env(env: dict[str, str]) -> dict[str, str]:
    """The stack's environment for a worker process: this one's, without proxies, quieter logs."""
    full = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    full.update(env, CHATOPS_LOG_LEVEL="WARNING")
    return full


def finished_at(ecs, invoke_id: str) -> float:
    """When the emulator's invocation ended: its last instance's finish."""
    return max(e["finished_at"] for e in ecs.invocations[invoke_id]["instances"].values())


def in_cloud_assistant(ecs, invoke_id: str) -> float:
    """An invocation's own time: accepted → its last instance's finish."""
    return finished_at(ecs, invoke_id) - ecs.invocations[invoke_id]["created_at"]


def own_seconds(ecs, record, steps: list[dict]) -> float:
    """The sum of a run's steps' own durations: a wait's length; a run step's time in Cloud Assistant
    (the emulator's record of its invocation: accepted → the last instance's finish)."""
    total = 0.0
    for n, step in enumerate(steps):
        if "run" not in step:
            total += float(str(step["wait"]).rstrip("s"))
            continue
        entry = record.state["steps"][str(n)]
        for invoke_id in (entry.get("result") or {}).get("invoke_ids") or ():
            total += in_cloud_assistant(ecs, invoke_id)
    return total


def breakdown(ecs, records: list, steps: list[dict]) -> dict[str, float]:
    """Where a run step's time goes, medians over every run step: from the step's start to RunCommand
    accepted, to the command's finish, and from there to the step's end (the last look, the output, the
    report); and the engine's time between steps, before the first and after the last (the summary)."""
    parts: dict[str, list[float]] = {
        "to_send": [],
        "command": [],
        "to_step_end": [],
        "between": [],
        "to_first": [],
        "after_last": [],
    }
    for r in records:
        entries = [r.state["steps"][str(n)] for n in range(len(steps))]
        parts["to_first"].append(entries[0]["started_at"] - r.created_at)
        parts["after_last"].append(r.finished_at - entries[-1]["finished_at"])
        for a, b in zip(entries, entries[1:], strict=False):
            parts["between"].append(b["started_at"] - a["finished_at"])
        for n, entry in enumerate(entries):
            ids = (entry.get("result") or {}).get("invoke_ids") or ()
            if "run" not in steps[n] or not ids:
                continue
            inv = ecs.invocations[ids[0]]
            finished = finished_at(ecs, ids[0])
            parts["to_send"].append(inv["created_at"] - entry["started_at"])
            parts["command"].append(finished - inv["created_at"])
            parts["to_step_end"].append(entry["finished_at"] - finished)
    return {k: round(statistics.median(v), 3) for k, v in parts.items() if v}


def run_floor(ecs, env: dict[str, str], runs: int, steps: int, seconds: float) -> dict:
    """The same runs by the floor client (bench/baselines/runbook_floor.py, a process of its own) on
    instances of their own in the same emulator: its overheads, measured as ours are."""
    from sandbox import credentials

    instances = [ecs.add_instance(f"bench-fl-{n:03d}", tags={"bench": f"floor{n}"}) for n in range(runs)]
    calls_before = len(ecs.calls)
    args = [
        sys.executable,
        "-m",
        "bench.baselines.runbook_floor",
        env["ECS_ENDPOINT"],
        credentials.ALIBABA_ACCESS_KEY_ID,
        credentials.ALIBABA_ACCESS_KEY_SECRET,
        credentials.REGION_ID,
        str(steps),
        f"{seconds:g}",
        *instances,
    ]
    done = subprocess.run(
        args, env=worker_env(env), capture_output=True, text=True, timeout=steps * seconds * 6 + 120
    )
    out = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {"runs": []}
    overheads = []
    for r in out["runs"]:
        own = sum(in_cloud_assistant(ecs, invoke_id) for invoke_id in r["invoke_ids"])
        if r["ok"] and own:
            overheads.append((r["finished"] - r["started"]) / own)
    return {
        "overheads": overheads,
        "lost_runs": runs - len(overheads),
        "api_calls": len(ecs.calls) - calls_before,
    }


def _floor_fields(floor: dict | None, overheads: list[float]) -> dict:
    if floor is None:
        return {}
    theirs = floor["overheads"]
    median = statistics.median(theirs) if theirs else None
    return {
        "floor": {
            "overhead_median": round(median, 4) if median else None,
            "overhead_p99": round(_percentile(theirs, 99), 4) if theirs else None,
            "lost_runs": floor["lost_runs"],
            "api_calls": floor["api_calls"],
        },
        "floor_ratio": round(statistics.median(overheads) / median, 4) if median and overheads else None,
    }


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def run(options: dict[str, str]) -> dict:
    from bot.pipeline.gates import submit
    from bot.pipeline.jobs import load_job
    from bot.pipeline.plans import Origin
    from handlers.runbooks import machine
    from handlers.runbooks.commands import plan_run
    from sandbox.stack import BotStack, redis_url_or_private

    loopback_only()
    runs = int(options.get("runs", 50))
    steps = int(options.get("steps", 5))
    seconds = float(options.get("seconds", 3))
    mix = options.get("mix", "run")
    threads = int(options.get("threads", runs + 4))
    latency = float(options.get("latency", 0))
    rate = float(options.get("rate", 20))  # the policy's ecs.api_rate_per_second (its default)
    with_floor = mix == "run" and options.get("floor", "1") != "0"
    definition = {
        "concurrency": max(1, runs),
        "params": {"group": {"type": "str", "pattern": "^g[0-9]+$", "default": "g0"}},
        "steps": _steps(steps, seconds, mix),
    }
    run_steps = sum(1 for s in definition["steps"] if "run" in s)
    redis_url, redis_server = redis_url_or_private()
    data_dir = Path(tempfile.mkdtemp(prefix="chatops-bench-runbooks-"))
    policy = data_dir / "policy.yaml"
    policy.write_text(
        yaml.safe_dump({"ecs": {"api_rate_per_second": rate}, "runbooks": {"bench": definition}})
    )
    worker = None
    try:
        bot = BotStack(
            data_dir=data_dir / "bot",
            env={"REDIS_URL": redis_url, "CHATOPS_CONFIG": str(policy)},
            emulators=["slack", "ecs"],
            worker=False,
        )
        with bot:
            spawned = time.time()
            worker = start_worker(worker_env(bot.env), data_dir / "worker.log", threads)
            ready_by = time.monotonic() + 60
            while not bot.services.queue.live_workers(spawned) and time.monotonic() < ready_by:
                time.sleep(0.1)  # the runs are timed from their submission: the worker consumes first
            ecs, services = bot.emulator("ecs"), bot.services
            ecs.latency = latency
            for n in range(runs):
                ecs.add_instance(f"bench-rb-{n:03d}", tags={"bench": f"g{n}"})
            book = services.policy.runbooks["bench"]
            ids = []
            for n in range(runs):  # the plans first (each resolves its selectors), then all at once
                origin = Origin(kind="runbook", name=f"bench {n}")
                plan = plan_run(
                    services,
                    "bench",
                    book,
                    {"group": f"g{n}"},
                    f"rbbench{n:04d}{time.time_ns() % 10**6}",
                    origin,
                )
                ids.append(plan)
            started = time.monotonic()
            for plan in ids:
                submit(services, plan)
            deadline = started + steps * seconds * 6 + 120
            records = {}
            while time.monotonic() < deadline and len(records) < runs:
                for plan in ids:
                    if plan.id not in records:
                        record = load_job(services.store, plan.id)
                        if record is not None and record.finished:
                            records[plan.id] = record
                time.sleep(0.5)
            wall = time.monotonic() - started
            run_commands = len(ecs.calls_named("RunCommand"))
            owns = {plan_id: own_seconds(ecs, r, definition["steps"]) for plan_id, r in records.items()}
            parts = breakdown(ecs, list(records.values()), definition["steps"])
            floor = None
            if with_floor:
                floor = run_floor(ecs, bot.env, runs, steps, seconds)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        if redis_server is not None:
            redis_server.stop()
    overheads = [
        (r.finished_at - r.created_at) / owns[plan_id]
        for plan_id, r in records.items()
        if r.finished_at and r.status == "done" and machine.outcome(r.state) == "succeeded"
    ]
    lost = runs - len(overheads)
    return {
        "runs": runs,
        "steps": steps,
        "overhead_median": round(statistics.median(overheads), 4) if overheads else None,
        "overhead_p99": round(_percentile(overheads, 99), 4) if overheads else None,
        "lost_runs": lost,
        "duplicate_steps": max(0, run_commands - run_steps * runs),
        "setup": {
            "seconds_per_step": seconds,
            "mix": mix,
            "threads": threads,
            "latency_s": latency,
            "api_rate_per_second": rate,
            "wall_s": round(wall, 2),
        },
        "breakdown_median_s": parts,
        **_floor_fields(floor, overheads),
        "targets": {
            "overhead_median_at_most_1_05": bool(overheads and statistics.median(overheads) <= 1.05),
            "overhead_p99_at_most_1_2": bool(overheads and _percentile(overheads, 99) <= 1.2),
        },
    }
