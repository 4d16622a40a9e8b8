"""What power actions look like in Slack: preview, dry-run verdict, progress line, final report. Pure."""

from __future__ import annotations

from collections import Counter

from bot import blocks
from bot.ecs_model import ACCEPTED, ALREADY_THERE, DONE, DRY_RUN_OK, FAILED, InstanceResult
from bot.pipeline.kinds import Attachment, Preview
from handlers.ecs.plan import VERBS, PowerPlan
from handlers.ecs.render import listing_tsv, plural, table

PREVIEW_ROWS = 15
REPORT_LINES = 40
NAMES_SHOWN = 10


def _names(instances, limit: int = NAMES_SHOWN, with_status: bool = False) -> str:
    shown = [f"{i.name} ({i.status})" if with_status else i.name for i in instances[:limit]]
    if len(instances) > limit:
        shown.append(f"+{len(instances) - limit} more")
    return ", ".join(shown)


def _options_line(plan: PowerPlan) -> str:
    parts = []
    if plan.action == "stop":
        parts.append(
            f"StoppedMode: {plan.options.stopped_mode}"
            if plan.options.stopped_mode
            else "StoppedMode: ECS default (KeepCharging unless economical mode is on)"
        )
        parts.append(f"ForceStop: {'yes' if plan.options.force else 'no'}")
    if plan.action == "reboot":
        parts.append(f"ForceReboot: {'yes' if plan.options.force else 'no'}")
    return " · ".join(parts)


def tag_counts(instances, keys: tuple[str, ...]) -> list[str]:
    """Per key tag, how many instances carry each value: ["env: 12 prod, 3 dev, 1 without"]."""
    out = []
    for key in keys:
        counts = Counter(i.tags.get(key) for i in instances)
        if set(counts) == {None}:
            continue
        values = sorted((v for v in counts if v is not None), key=lambda v: (-counts[v], v))
        parts = [f"{counts[v]} {v}" for v in values] + ([f"{counts[None]} without"] if counts[None] else [])
        out.append(f"{key}: {', '.join(parts)}")
    return out


def _plan_sections(plan: PowerPlan, key_tags: tuple[str, ...] = ()) -> list[dict]:
    verb = VERBS[plan.action][0]
    head = f"*{verb.capitalize()} {plural(len(plan.targets), 'instance')}* matching `{plan.selector}` in {plan.region}"
    counted = tag_counts(plan.targets, key_tags)
    out = [blocks.section(head + ("\n" + " · ".join(counted) if counted else ""))]
    if plan.targets:
        out.append(blocks.section(blocks.code(table(list(plan.targets), PREVIEW_ROWS))))
        if len(plan.targets) > PREVIEW_ROWS:
            out.append(blocks.context(f"…and {len(plan.targets) - PREVIEW_ROWS} more"))
    if plan.already:
        out.append(
            blocks.section(
                f"*Already {plan.target_status} ({len(plan.already)}), not touched:* {_names(list(plan.already))}"
            )
        )
    if plan.busy:
        out.append(
            blocks.section(
                f"*Left alone ({len(plan.busy)}), cannot {verb} now:* {_names(list(plan.busy), with_status=True)}"
            )
        )
    if plan.missing:
        out.append(blocks.section(f"*Not found in {plan.region}:* {', '.join(plan.missing[:NAMES_SHOWN])}"))
    return out


def preview(plan: PowerPlan, key_tags: tuple[str, ...] = ()) -> Preview:
    """The plan as its gate message shows it (the pipeline adds the expiry and the buttons); a plan
    longer than the message's table comes with its full target list as a file."""
    verb = VERBS[plan.action][0]
    text = f"Preview: {verb} {plural(len(plan.targets), 'instance')} matching {plan.selector}"
    attachment = None
    if len(plan.targets) > PREVIEW_ROWS:
        attachment = Attachment(
            f"ecs-{plan.action}-{plan.plan_id}-targets.tsv",
            listing_tsv(list(plan.targets)),
            f"/ecs {plan.action} {plan.selector}: the {len(plan.targets)} targets of this preview",
        )
    return Preview(
        text=text,
        blocks=_plan_sections(plan, key_tags),
        confirm_label=f"Confirm: {verb} {len(plan.targets)}",
        danger=plan.action in ("stop", "reboot"),
        notes=tuple(n for n in (_options_line(plan),) if n),
        attachment=attachment,
    )


def nothing_to_do(plan: PowerPlan) -> tuple[str, list[dict]]:
    verb = VERBS[plan.action][0]
    text = f"Nothing to {verb}: none of the {plural(plan.matched, 'matching instance')} can be {VERBS[plan.action][2]} now."
    return text, [blocks.section(f":information_source: {text}")] + _plan_sections(plan)[1:]


def dry_run(plan: PowerPlan, results: list[InstanceResult]) -> tuple[str, list[dict]]:
    verdicts = Counter((r.outcome, r.code, r.message) for r in results)
    lines = []
    for (outcome, code, message), count in verdicts.most_common():
        mark = ":white_check_mark:" if outcome == DRY_RUN_OK else ":x:"
        lines.append(f"{mark} {plural(count, 'instance')}: `{code or 'ok'}` {message}")
    body = [blocks.section("*Dry run* — nothing was changed.")] + _plan_sections(plan)
    body.append(
        blocks.section(
            "*ECS DryRun verdict* (sent with BatchOptimization=AllTogether, where it is meaningful):\n"
            + "\n".join(lines)
        )
    )
    note = _options_line(plan)
    if note:
        body.append(blocks.context(note))
    ok = all(r.outcome == DRY_RUN_OK for r in results)
    text = f"Dry run: {VERBS[plan.action][0]} {plural(len(plan.targets), 'instance')} — ECS checks {'passed' if ok else 'failed'}"
    return text, blocks.limit_blocks(body)


def progress(
    plan: PowerPlan,
    results: list[InstanceResult],
    phase: str,
    reached: int | None = None,
    confirmed_by: str | None = None,
    waiting: int = 0,
    approved_by: str | None = None,
) -> tuple[str, list[dict]]:
    """`phase`: "queued" | "resuming" | "sending" | "waiting". The words match the phase (sent, there,
    failed) and every count is out of the plan's targets: `reached` of `waiting` are there, and the
    wait also watches the instances that were already there at preview, which are not targets."""
    targets = set(plan.target_ids)
    counts = Counter(r.outcome for r in results if r.instance_id in targets)
    gerund = VERBS[plan.action][1]
    total = len(plan.targets)
    sent = counts[ACCEPTED] + counts[ALREADY_THERE] + counts[DONE]
    failed = counts[FAILED]
    if phase == "queued":
        line = f"{gerund} {total} — starting…"
    elif phase == "resuming":
        line = f"{gerund} {total} — resuming after the worker running it stopped ({sent} sent before)…"
    elif phase == "sending":
        left = total - sent - failed
        line = f"{gerund} {total} — {sent} sent, {failed} failed" + (f", {left} to send" if left else "")
    else:
        line = f"{gerund} {total} — {sent} sent, {failed} failed · "
        if reached is None:
            line += f"waiting for {plan.target_status}"
        else:
            there = min(sent, max(0, reached - len(plan.already)))  # those already there are not targets
            line += f"{there} of {sent} {plan.target_status}"
    context = (
        f"`/ecs {plan.action} {plan.selector}` in {plan.region}"
        + (f" · confirmed by <@{confirmed_by}>" if confirmed_by else "")
        + (f", approved by <@{approved_by}>" if approved_by else "")
    )
    return line, [blocks.section(f":hourglass_flowing_sand: {line}"), blocks.context(context)]


def _report_line(r: InstanceResult, name: str) -> str:
    if r.outcome == DONE:
        return f"✓ {name}  {r.instance_id}  {r.current_status}"
    if r.outcome == ALREADY_THERE:
        return f"= {name}  {r.instance_id}  already {r.current_status or r.previous_status}"
    if r.outcome == ACCEPTED:
        return f"? {name}  {r.instance_id}  sent ({r.current_status or 'accepted'}); final state not verified"
    return f"✗ {name}  {r.instance_id}  {r.code}: {r.message}"


def report(
    plan: PowerPlan,
    results: list[InstanceResult],
    seconds: float,
    confirmed_by: str | None = None,
    requested_by: str | None = None,
    approved_by: str | None = None,
) -> tuple[str, list[dict], str | None]:
    """The final report: (text, blocks, full per-instance report as text when it does not fit, else None)."""
    names = {i.instance_id: i.name for i in (*plan.targets, *plan.already, *plan.busy)}
    counts = Counter(r.outcome for r in results)
    failed = [r for r in results if r.outcome == FAILED]
    past = VERBS[plan.action][2]
    mark = ":white_check_mark:" if not failed else ":warning:"
    # A reboot has no "already there": a running instance is what it reboots.
    already = counts[ALREADY_THERE] if plan.action != "reboot" else 0
    head = (
        f"{past.capitalize()} {counts[DONE]} of {len(plan.targets)} — {counts[DONE]} done"
        + (f", {already} already {plan.target_status}" if already else "")
        + f", {len(failed)} failed ({seconds:.0f} s)"
    )
    lines = [_report_line(r, names.get(r.instance_id, "?")) for r in results]
    lines += [f"- {i.name}  {i.instance_id}  left alone: it was {i.status}" for i in plan.busy]
    body = [blocks.section(f"{mark} *{head}*")]
    attachment = None
    if len(lines) <= REPORT_LINES:
        body.append(blocks.section(blocks.code("\n".join(lines))))
    else:
        attachment = "\n".join(lines) + "\n"
        if failed:
            shown = [_report_line(r, names.get(r.instance_id, "?")) for r in failed[:REPORT_LINES]]
            body.append(blocks.section("*Failures:*\n" + blocks.code("\n".join(shown))))
            if len(failed) > REPORT_LINES:
                body.append(blocks.context(f"…and {len(failed) - REPORT_LINES} more failures"))
        body.append(blocks.context("The per-instance report is attached to this channel."))
    requested_by = requested_by or f"<@{plan.requester}>"
    context = f"`/ecs {plan.action} {plan.selector}` in {plan.region} · requested by {requested_by}"
    if confirmed_by:
        context += f", confirmed by <@{confirmed_by}>"
    if approved_by:
        context += f", approved by <@{approved_by}>"
    options = _options_line(plan)
    body.append(blocks.context(context + (f" · {options}" if options else "")))
    return head, blocks.limit_blocks(body), attachment
