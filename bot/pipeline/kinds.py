"""What a capability contributes to the pipeline: a `PlanKind` (how its plan looks, how its job acts,
how it reports), registered with `capability.plan_kind(MyKind())`. Everything else — saving the plan,
the Confirm / Cancel gates, authorization with the targets, the durable job with its lease, heartbeat,
resume and attempt cap, the progress message, the report and its file, the audit result — is the
pipeline's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.pipeline.jobs import JobRun
    from bot.pipeline.plans import Plan
    from bot.policy import Policy
    from bot.services import Services


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: str
    title: str


@dataclass(frozen=True)
class Preview:
    """A plan as the gate message shows it. The pipeline adds `notes` and the expiry to a context line,
    appends the Confirm / Cancel buttons, and attaches `attachment` (the full list of what the plan
    touches, when the message shows only its head) to the channel."""

    text: str
    blocks: list[dict]
    confirm_label: str = "Confirm"
    danger: bool = False
    notes: tuple[str, ...] = ()
    attachment: Attachment | None = None


@dataclass(frozen=True)
class Report:
    """The final message of a job (it replaces the progress message), the audit result, and a file
    when the full list does not fit in the message."""

    text: str
    blocks: list[dict]
    outcome: str = "ok"  # the audit result: "ok", "3 failed", "error"
    attachment: Attachment | None = None
    request_ids: tuple[str, ...] = ()  # the provider's request ids of the calls that made the change


class PlanKind:
    """Base of a plan kind. `name` is the plan's `kind` and the registry key."""

    name: str = ""

    def preview(self, plan: Plan, policy: Policy) -> Preview:
        raise NotImplementedError

    def confirmed_text(self, plan: Plan, by: str) -> str:
        return f":white_check_mark: Confirmed by <@{by}>: {plan.summary}. Progress is posted in this channel."

    def run(self, run: JobRun) -> None:
        """Do the work. Save per-step progress in `run.state` with `run.save()`, show it with
        `run.progress(...)`, and mark the point after which a crash may leave effects whose outcome is
        unknown with `run.acting(phase)`. `run.resuming` says a previous attempt got that far."""
        raise NotImplementedError

    def woken(self, run: JobRun) -> bool:
        """For a kind that parks its job (`run.park()`): whether what it waits for has come already."""
        return False

    def closed(self, services: Services, plan: Plan, result: str) -> None:
        """An approval request for a plan of this kind ended without its job (`result`: denied,
        withdrawn, expired)."""

    def report(self, run: JobRun, seconds: float, failure: str | None = None) -> Report:
        """The final report from `run.state`; with `failure`, the job stopped (or was given up) and the
        report says so, with what is known."""
        raise NotImplementedError
