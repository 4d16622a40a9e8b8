"""`chatops bench runbooks`: many runs of a multi-step runbook at once — the engine's overhead.

Set-up: the whole bot in this process (`sandbox.stack.BotStack`: emulators, web app, a real worker with
`threads` threads, a real Redis). `runs` (default 50) instances, one per run, each its own tag
`bench=gN`. One runbook, `concurrency: runs`, whose `steps` (default 5) follow `mix` (default `run`:
every step a Cloud Assistant run of `sleep SECONDS` on the run's instance; `wait`: every step a
`wait: SECONDS s`; `alternate`: run, wait, run, …). `seconds` (default 3) is each step's own duration,
what the emulator takes for the command (its `sleep N` takes N seconds) or the wait's length.

All runs are submitted at once through the pipeline (as a cron or an event trigger does: a non-user
origin, no buttons). A run's wall time is from its submission to its job's end (the job record's
`created_at` → `finished_at`); its overhead is that ÷ the sum of its steps' own durations.
`lost_runs`: runs that did not end succeeded within the deadline. `duplicate_steps`: RunCommand calls
beyond one per run step (the emulator counts them).

Options (key=value): runs, steps, seconds, mix, threads, latency (per ECS call, default 0).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import yaml

from bench import loopback_only

HEADLINE = ("overhead_median", "overhead_p99", "lost_runs")


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
    definition = {
        "concurrency": max(1, runs),
        "params": {"group": {"type": "str", "pattern": "^g[0-9]+$", "default": "g0"}},
        "steps": _steps(steps, seconds, mix),
    }
    run_steps = sum(1 for s in definition["steps"] if "run" in s)
    redis_url, redis_server = redis_url_or_private()
    data_dir = Path(tempfile.mkdtemp(prefix="chatops-bench-runbooks-"))
    policy = data_dir / "policy.yaml"
    policy.write_text(yaml.safe_dump({"runbooks": {"bench": definition}}))
    try:
        bot = BotStack(
            data_dir=data_dir / "bot",
            env={"REDIS_URL": redis_url, "CHATOPS_CONFIG": str(policy)},
            emulators=["slack", "ecs"],
            worker_threads=threads,
        )
        with bot:
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
    finally:
        if redis_server is not None:
            redis_server.stop()
    own = steps * seconds
    overheads = [
        (r.finished_at - r.created_at) / own
        for r in records.values()
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
            "wall_s": round(wall, 2),
        },
        "targets": {
            "overhead_median_at_most_1_05": bool(overheads and statistics.median(overheads) <= 1.05),
            "overhead_p99_at_most_1_2": bool(overheads and _percentile(overheads, 99) <= 1.2),
        },
    }
