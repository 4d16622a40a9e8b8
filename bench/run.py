"""`chatops bench run`: a Cloud Assistant command on 500 instances — ours vs the seed's 2ⁿ polling loop.

Set-up (the same for both, each on its own fresh ECS emulator): `instances` Linux instances (default
500, so 5 batches of 100), each taking a duration drawn once from `min`..`max` seconds (default 1–60,
`seed` 7) and printing one line; `latency` seconds per ECS call (default 0.05).

- ours: the whole bot in this process (`sandbox.stack.BotStack`: the web app, a real worker, a real
  Redis), driven through its entry points: a signed `/ecs run tag:bench=run -- …`, then a click on
  Confirm. `seconds` runs from the click to the final report in Slack; `api_calls` counts the Cloud
  Assistant calls of the job (RunCommand, DescribeInvocations, DescribeInvocationResults; the
  preview's agent check is reported apart). Repeated `repeat` times (default 5); `lag_seconds` is the
  median, every run is listed.
- baseline: `bench/baselines/run_naive.py` — RunCommand per batch, then DescribeInvocations after
  waits of 2, 4, 8 … s, batch after batch. `seconds` from its first call to when it saw the run done.

`lag_seconds`: from the moment the last instance finished (the emulator records it, no API call) to
the final report (ours: the moment the report appears in the Slack emulator, watched every 10 ms;
baseline: the moment it saw the whole run finished). Targets: ours.lag_seconds ≤ 1.5, and
ours.api_calls / ours.seconds ≤ 1.2 × the number of batches.

Options (key=value): instances, min, max, seed, latency, repeat.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import yaml

from bench import loopback_only

TAG = {"bench": "run"}
HEADLINE = ("ours.lag_seconds", "baseline.lag_seconds", "ours.api_calls")
JOB_APIS = ("RunCommand", "DescribeInvocations", "DescribeInvocationResults")
COMMAND = "/opt/bench/job.sh"


def durations(count: int, low: float, high: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.uniform(low, high), 3) for _ in range(count)]


def fleet(ecs, spans: list[float]) -> list[str]:
    """The instances, and a command behaviour giving instance n its duration and one line of output."""
    ids = [ecs.add_instance(f"bench-run-{n:03d}", tags=dict(TAG)) for n in range(len(spans))]
    by_id = dict(zip(ids, spans, strict=True))
    ecs.command_behaviour = lambda inst, text, kind: (
        by_id[inst["InstanceId"]],
        0,
        f"done on {inst['InstanceName']}\n",
    )
    return ids


def last_finish(ecs) -> float | None:
    ends = [e.get("finished_at") for inv in ecs.invocations.values() for e in inv["instances"].values()]
    return max(ends) if ends and None not in ends else None


def _watch(slack, fragment: str, found: dict, stop: threading.Event) -> None:
    while not stop.is_set():
        for m in slack.channel_messages("C_OPS"):
            if fragment in m.text:
                found["at"] = time.time()
                return
        time.sleep(0.01)


def _slash(bot, text: str) -> dict:
    """A signed `/ecs` slash command, as the sandbox console sends it; the answer's JSON."""
    from sandbox.console_slack import signed_post, slash_body

    response_url = bot.emulator("slack").new_response_url("C_OPS", "U_ALICE")
    status, _, body = signed_post(
        bot.web_url, slash_body("/ecs", text, "C_OPS", "U_ALICE", "alice", response_url)
    )
    if status != 200:
        raise RuntimeError(f"/ecs {text}: HTTP {status}")
    return json.loads(body)


def _confirm(bot, answer: dict) -> None:
    """A signed click on the preview's Confirm button."""
    from sandbox.console_slack import click_body, signed_post

    for block in answer.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == "plan.confirm":
                response_url = bot.emulator("slack").new_response_url("C_OPS", "U_ALICE")
                body = click_body(
                    element=element,
                    block=block,
                    message={"blocks": answer["blocks"], "text": answer.get("text", "")},
                    message_ts=None,
                    ephemeral=True,
                    channel="C_OPS",
                    user="U_ALICE",
                    user_name="alice",
                    response_url=response_url,
                )
                status, _, _ = signed_post(bot.web_url, body)
                if status != 200:
                    raise RuntimeError(f"Confirm: HTTP {status}")
                return
    raise RuntimeError("the preview has no Confirm button: " + str(answer.get("text")))


def run_ours_once(spans: list[float], latency: float, redis_url: str) -> dict:
    from sandbox.stack import BotStack

    data_dir = Path(tempfile.mkdtemp(prefix="chatops-bench-run-"))
    policy = data_dir / "policy.yaml"
    policy.write_text(yaml.safe_dump({"ecs": {"max_instances": {"run": 1000}}}))
    bot = BotStack(
        data_dir=data_dir / "bot",
        env={"REDIS_URL": redis_url, "CHATOPS_CONFIG": str(policy)},
        emulators=["slack", "ecs"],
    )
    with bot:
        ecs, slack = bot.emulator("ecs"), bot.emulator("slack")
        fleet(ecs, spans)
        ecs.latency = latency
        answer = _slash(bot, f"run tag:bench=run -- {COMMAND}")
        preview_calls = len(ecs.calls)
        found: dict = {}
        stop = threading.Event()
        watcher = threading.Thread(
            target=_watch, args=(slack, f"Ran on {len(spans)}", found, stop), daemon=True
        )
        watcher.start()
        clicked = time.time()
        _confirm(bot, answer)
        watcher.join(max(spans) + 300)
        stop.set()
        if "at" not in found:
            raise RuntimeError("the run's report never appeared")
        calls = list(ecs.calls)[preview_calls:]
        job_calls = [c for c in calls if c.name in JOB_APIS]
        done = last_finish(ecs)
        seconds = found["at"] - clicked
        return {
            "lag_seconds": round(found["at"] - done, 3) if done else None,
            "api_calls": len(job_calls),
            "seconds": round(seconds, 2),
            "calls_by_api": {n: sum(1 for c in job_calls if c.name == n) for n in JOB_APIS},
            "preview_agent_calls": sum(
                1 for c in list(ecs.calls)[:preview_calls] if c.name == "DescribeCloudAssistantStatus"
            ),
            "throttled_or_failed_calls": sum(1 for c in calls if c.status != 200),
        }


def run_baseline(spans: list[float], latency: float) -> dict:
    from bench.baselines.run_naive import NaiveRunner
    from sandbox import credentials
    from sandbox.stack import EmulatorStack

    stack = EmulatorStack(["ecs"]).start()
    try:
        ecs = stack.get("ecs")
        ids = fleet(ecs, spans)
        ecs.latency = latency
        runner = NaiveRunner(
            ecs.base_url,
            credentials.ALIBABA_ACCESS_KEY_ID,
            credentials.ALIBABA_ACCESS_KEY_SECRET,
            credentials.REGION_ID,
        )
        started = time.time()
        result = runner.run(ids, COMMAND)
        done = last_finish(ecs)
        statuses = [r["status"] for r in result["instances"].values()]
        return {
            "lag_seconds": round(result["finished_at"] - done, 3) if done else None,
            "api_calls": result["api_calls"],
            "seconds": round(result["finished_at"] - started, 2),
            "waits": runner.waits,
            "succeeded": statuses.count("Success"),
        }
    finally:
        stack.stop()


def run(options: dict[str, str]) -> dict:
    from sandbox.stack import redis_url_or_private

    loopback_only()
    count = int(options.get("instances", 500))
    low, high = float(options.get("min", 1)), float(options.get("max", 60))
    latency = float(options.get("latency", 0.05))
    repeat = int(options.get("repeat", 5))
    spans = durations(count, low, high, int(options.get("seed", 7)))
    batches = -(-count // 100)
    redis_url, redis_server = redis_url_or_private()
    try:
        runs = [run_ours_once(spans, latency, redis_url) for _ in range(repeat)]
    finally:
        if redis_server is not None:
            redis_server.stop()
    baseline = run_baseline(spans, latency)
    lags = [r["lag_seconds"] for r in runs if r["lag_seconds"] is not None]
    median_run = sorted(runs, key=lambda r: r["lag_seconds"] or 0)[len(runs) // 2]
    ours = {
        "lag_seconds": round(statistics.median(lags), 3) if lags else None,
        "api_calls": median_run["api_calls"],
        "seconds": median_run["seconds"],
        "runs": runs,
    }
    rate = ours["api_calls"] / ours["seconds"] if ours["seconds"] else None
    return {
        "instances": count,
        "ours": ours,
        "baseline": baseline,
        "targets": {
            "lag_at_most_1_5_s": bool(ours["lag_seconds"] is not None and ours["lag_seconds"] <= 1.5),
            "calls_per_second_at_most_1_2_per_batch": bool(rate is not None and rate <= 1.2 * batches),
            "calls_per_second": round(rate, 2) if rate else None,
            "limit": 1.2 * batches,
        },
        "setup": {"batches": batches, "durations_s": [low, high], "latency_s": latency, "repeat": repeat},
    }
