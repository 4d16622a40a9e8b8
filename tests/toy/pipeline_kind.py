"""A toy plan kind for the pipeline's contract suite: `/zz-toy touch N [hold=K]` plans to "touch" N
targets; its job touches them one step at a time (a counter per target in the store, so a test can see
that nothing was touched twice), saving each step. With `hold=K` the first attempt stops after K steps
and waits, so a test can kill the worker there.

`python -m tests.toy.pipeline_kind` runs a worker process with the bot's capabilities plus this one.
"""

from __future__ import annotations

import os
import sys
import uuid

from bot import blocks
from bot.commands import CommandRequest, Reply
from bot.errors import UserError
from bot.pipeline.gates import propose
from bot.pipeline.jobs import JobRun
from bot.pipeline.kinds import Attachment, PlanKind, Preview, Report
from bot.pipeline.plans import Origin, Plan, PlanTarget
from bot.registry import Capability, Registry

capability = Capability("tests.toy.pipeline_kind")
USAGE = "/zz-toy touch N [hold=K]"
HOLD_SECONDS = 120.0


def touched_key(target: str) -> str:
    return f"toy:touched:{target}"


class ToyKind(PlanKind):
    name = "toy.touch"

    def preview(self, plan: Plan, policy) -> Preview:
        ids = ", ".join(plan.target_ids)
        return Preview(
            text=f"Preview: touch {len(plan.targets)}",
            blocks=[blocks.section(f"*Touch {len(plan.targets)} targets:* {ids}")],
            confirm_label=f"Confirm: touch {len(plan.targets)}",
            notes=("Toy plan kind.",),
        )

    def run(self, run: JobRun) -> None:
        done: list[str] = run.state.setdefault("done", [])
        hold = int(run.plan.body.get("hold") or 0)
        run.progress(f"Touching {len(run.plan.targets)} — {'resuming' if run.resuming else 'starting'}", [])
        for target in run.plan.target_ids:
            if target in done:
                continue
            if hold and len(done) >= hold and run.record.attempts == 1:
                run.services.store.set("toy:holding", run.plan.id, 600)
                run.services.clock.sleep(HOLD_SECONDS)  # killed here by the test
            run.acting("touching")
            run.services.store.incr(touched_key(target))
            done.append(target)
            run.save()
            run.progress(f"Touching {len(run.plan.targets)} — {len(done)} done", [])

    def report(self, run: JobRun, seconds: float, failure: str | None = None) -> Report:
        done = run.state.get("done") or []
        head = f"Touched {len(done)} of {len(run.plan.targets)}"
        if failure:
            head = f"{failure} — {head}"
        by = run.plan.origin.mention()
        lines = "\n".join(done)
        return Report(
            text=head,
            blocks=[blocks.section(head), blocks.context(f"requested by {by}")],
            outcome="error" if failure else "ok",
            attachment=Attachment(f"toy-{run.plan.id}.txt", lines + "\n", "touched") if done else None,
        )


KIND = capability.plan_kind(ToyKind())


@capability.subcommand(
    "/zz-toy", "touch", permission="toy.touch", usage=USAGE, summary="toy plans", authorizes_targets=True
)
def touch(req: CommandRequest) -> Reply:
    words = req.args.split()
    if not words or not words[0].isdigit():
        raise UserError("How many targets?", USAGE)
    hold = next((int(w[5:]) for w in words[1:] if w.startswith("hold=") and w[5:].isdigit()), 0)
    services = req.services
    now = services.clock.time()
    plan = Plan(
        id=uuid.uuid4().hex[:16],
        kind=KIND.name,
        permission="toy.touch",
        origin=Origin(kind="user", name=req.actor.user_id, channel=req.actor.channel_id),
        summary=f"touch {words[0]} targets",
        created_at=now,
        expires_at=now + services.policy.confirmation.ttl_seconds,
        targets=tuple(PlanTarget(id=f"t-{n:02d}", tags={"env": "toy"}) for n in range(int(words[0]))),
        body={"hold": hold},
    )
    services.authz.authorize(req.actor, plan.permission, plan.authz_targets(), detail=plan.summary)
    return propose(services, plan)


def registry() -> Registry:
    return Registry.discover(extra=[capability])


def main() -> int:
    from bot.config import load_settings
    from bot.logs import configure_logging
    from bot.services import Services
    from bot.worker import Worker

    settings = load_settings(dict(os.environ))
    configure_logging(settings.CHATOPS_LOG_LEVEL)
    services = Services(settings, registry=registry())
    Worker(services, workers=2).run_forever()
    services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
