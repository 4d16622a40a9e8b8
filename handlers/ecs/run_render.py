"""What a Cloud Assistant run looks like in Slack: the preview, the live progress line, the final report
and the file with every instance's output. Pure."""

from __future__ import annotations

from collections import Counter

from bot import blocks
from bot.pipeline.kinds import Attachment, Preview
from bot.render import escape, plural, table
from bot.run_model import InstanceRun, counts, first_lines, group_outputs, plain_error
from handlers.ecs.run_plan import RunPlan, os_of

PREVIEW_ROWS = 15
SLOWEST = 5
FAILURES_SHOWN = 10
GROUPS_SHOWN = 5
COMMAND_SHOWN = 1500
LABELS = {"shell": "shell script", "bat": "batch script", "powershell": "PowerShell script"}


def _command_block(plan: RunPlan) -> str:
    text = plan.command if len(plan.command) <= COMMAND_SHOWN else plan.command[:COMMAND_SHOWN] + "\n…"
    return blocks.code(escape(text))


def preview(plan: RunPlan) -> Preview:
    systems = Counter(os_of(i) for i in plan.targets)
    mix = ", ".join(f"{n} {os.title()}" for os, n in systems.most_common())
    what = f"template `{escape(plan.template)}`" if plan.template else f"a {LABELS[plan.type]}"
    head = (
        f"*Run {what} on {plural(len(plan.targets), 'instance')}* matching `{escape(plan.selector)}` in "
        f"{plan.region} ({mix})"
    )
    body = [blocks.section(head), blocks.section(_command_block(plan))]
    rows = [(i.name, i.instance_id, os_of(i), i.private_ip) for i in plan.targets[:PREVIEW_ROWS]]
    body.append(blocks.section(blocks.code(escape(table(("NAME", "ID", "OS", "PRIVATE IP"), rows)))))
    if len(plan.targets) > PREVIEW_ROWS:
        body.append(
            blocks.context(f"…and {len(plan.targets) - PREVIEW_ROWS} more (all in the attached file)")
        )
    if plan.skipped:
        lines = [f"• {escape(i.name or i.instance_id)} — {escape(why)}" for i, why in plan.skipped[:10]]
        more = f"\n…and {len(plan.skipped) - 10} more" if len(plan.skipped) > 10 else ""
        body.append(
            blocks.section(f"*Cannot run it ({len(plan.skipped)}), left out:*\n" + "\n".join(lines) + more)
        )
    notes = [f"Type {plan.api_type}", f"timeout {plan.timeout} s"]
    if plan.username:
        notes.append(f"as `{escape(plan.username)}`")
    if plan.working_dir:
        notes.append(f"in `{escape(plan.working_dir)}`")
    attachment = None
    if len(plan.targets) > PREVIEW_ROWS:
        lines = ["instance_id\tname\tos\tprivate_ip"] + [
            f"{i.instance_id}\t{i.name}\t{os_of(i)}\t{i.private_ip}" for i in plan.targets
        ]
        attachment = Attachment(
            f"ecs-run-{plan.plan_id}-targets.tsv", "\n".join(lines) + "\n", "the instances this run targets"
        )
    return Preview(
        text=f"Preview: run on {plural(len(plan.targets), 'instance')} matching {plan.selector}",
        blocks=body,
        confirm_label=f"Confirm: run on {len(plan.targets)}",
        danger=True,
        notes=(" · ".join(notes),),
        attachment=attachment,
    )


def _count_line(runs: list[InstanceRun], total: int) -> str:
    parts = [f"{n} {status}" for status, n in counts(runs)]
    return f"{sum(1 for r in runs if r.finished)} of {total} done" + (
        f" · {', '.join(parts)}" if parts else ""
    )


def _ids_line(invoke_ids: list[str]) -> str:
    if not invoke_ids:
        return ""
    shown = ", ".join(f"`{i}`" for i in invoke_ids[:3])
    more = f" +{len(invoke_ids) - 3} more" if len(invoke_ids) > 3 else ""
    return f"Invocation {shown}{more} · `/ecs run status {invoke_ids[0]}` · `/ecs run stop {invoke_ids[0]}`"


def progress(
    plan: RunPlan,
    runs: dict[str, InstanceRun],
    invoke_ids: list[str],
    elapsed: float,
    phase: str,
    names: dict[str, str],
) -> tuple[str, list[dict]]:
    """The live line: counts per status, the slowest instances still running, elapsed time."""
    total = len(plan.targets)
    known = [runs.get(i, InstanceRun(i)) for i in plan.target_ids]
    text = f":hourglass_flowing_sand: Running on {total} — {phase} · {_count_line(known, total)} · {elapsed:.0f} s"
    body = [blocks.section(text)]
    waiting = [r for r in known if not r.finished]
    if waiting and phase != "sending":
        slow = sorted(waiting, key=lambda r: r.start_time or "~")[:SLOWEST]
        shown = ", ".join(f"{escape(names.get(r.instance_id, r.instance_id))} ({r.status})" for r in slow)
        extra = f" +{len(waiting) - SLOWEST} more" if len(waiting) > SLOWEST else ""
        body.append(blocks.context(f"Still running: {shown}{extra}"))
    line = _ids_line(invoke_ids)
    body.append(
        blocks.context(
            f"`/ecs run {escape(plan.selector)}` in {plan.region}" + (f" · {line}" if line else "")
        )
    )
    return text, body


def _failure_line(r: InstanceRun, name: str) -> str:
    code = f"exit {r.exit_code}" if r.exit_code is not None else r.status
    why = plain_error(r.error_code, r.error_info) if r.error_code else ""
    head = f"• *{escape(name)}* (`{r.instance_id}`) — {r.status}, {code}" + (
        f": {escape(why)}" if why else ""
    )
    lines = first_lines(r.output)
    return head + ("\n" + blocks.code(escape("\n".join(lines))) if lines else "")


def report(
    plan: RunPlan,
    runs: dict[str, InstanceRun],
    invoke_ids: list[str],
    seconds: float,
    confirmed_by: str | None,
    requested_by: str,
    approved_by: str | None = None,
) -> tuple[str, list[dict], str]:
    """(text, blocks, the output file): counts per status, failures first with their exit code and first
    lines, successes grouped by identical output, and the instances whose output Cloud Assistant cut."""
    names = {i.instance_id: i.name or i.instance_id for i in plan.targets}
    final = [runs.get(i, InstanceRun(i, "NoResult")) for i in plan.target_ids]
    ok = [r for r in final if r.ok]
    failed = [r for r in final if not r.ok]
    mark = ":white_check_mark:" if not failed else (":x:" if not ok else ":warning:")
    tally = ", ".join(f"{n} {status}" for status, n in counts(final))
    text = f"{mark} Ran on {len(final)} in {seconds:.0f} s: {tally}"
    body = [blocks.section(f"*{escape(text)}*")]
    for r in failed[:FAILURES_SHOWN]:
        body.append(blocks.section(_failure_line(r, names.get(r.instance_id, r.instance_id))))
    if len(failed) > FAILURES_SHOWN:
        body.append(blocks.context(f"…and {len(failed) - FAILURES_SHOWN} more failures (all in the file)"))
    for output, ids in group_outputs(ok)[:GROUPS_SHOWN]:
        lines = output.splitlines()
        who = escape(names.get(ids[0], ids[0])) if len(ids) == 1 else plural(len(ids), "instance")
        said = (
            f"printed the same {plural(len(lines), 'line')}"
            if len(ids) > 1
            else f"printed {plural(len(lines), 'line')}"
        )
        shown = "\n".join(first_lines(output, 5))
        body.append(
            blocks.section(
                f"*{who}* {said if lines else 'printed nothing'}"
                + (f"\n{blocks.code(escape(shown))}" if shown else "")
            )
        )
    groups = group_outputs(ok)
    if len(groups) > GROUPS_SHOWN:
        body.append(
            blocks.context(f"…and {len(groups) - GROUPS_SHOWN} more distinct outputs (all in the file)")
        )
    cut = [r for r in final if r.dropped]
    if cut:
        listed = ", ".join(
            f"{escape(names.get(r.instance_id, r.instance_id))} ({r.dropped:,} bytes)" for r in cut[:SLOWEST]
        )
        more = f" +{len(cut) - SLOWEST} more" if len(cut) > SLOWEST else ""
        body.append(
            blocks.context(
                f"Output cut: Cloud Assistant kept the first 24 KB on {plural(len(cut), 'instance')} and "
                f"dropped the rest: {listed}{more}"
            )
        )
    who = [f"requested by {requested_by}"]
    if confirmed_by:
        who.append(f"confirmed by <@{confirmed_by}>")
    if approved_by:
        who.append(f"approved by <@{approved_by}>")
    line = _ids_line(invoke_ids)
    body.append(blocks.context(" · ".join(who) + (f" · {line}" if line else "")))
    return text, blocks.limit_blocks(body), output_file(plan, final, names)


def output_file(plan: RunPlan, final: list[InstanceRun], names: dict[str, str]) -> str:
    """Every instance's full output, failures first."""
    out = [f"# /ecs run {plan.selector} ({plan.region}) — {plan.api_type}", "# command:"]
    out += [f"#   {line}" for line in plan.command.splitlines()]
    order = sorted(final, key=lambda r: (r.ok, names.get(r.instance_id, "")))
    for r in order:
        code = "" if r.exit_code is None else f" exit {r.exit_code}"
        why = f" — {plain_error(r.error_code, r.error_info)}" if r.error_code else ""
        out.append("")
        out.append(f"=== {names.get(r.instance_id, r.instance_id)} ({r.instance_id}): {r.status}{code}{why}")
        if r.dropped:
            out.append(f"[Cloud Assistant kept the first 24 KB; {r.dropped:,} bytes were dropped]")
        out.append((r.output or "").rstrip("\n") or "(no output)")
    for i, why in plan.skipped:
        out.append("")
        out.append(f"=== {i.name or i.instance_id} ({i.instance_id}): not run — {why}")
    return "\n".join(out) + "\n"


def status_text(plan: RunPlan, runs: dict[str, InstanceRun], invoke_ids: list[str], finished: bool) -> str:
    total = len(plan.targets)
    known = [runs.get(i, InstanceRun(i)) for i in plan.target_ids]
    state = "finished" if finished else "running"
    return (
        f"Run `{invoke_ids[0] if invoke_ids else plan.plan_id}` ({state}) on {total} matching "
        f"`{escape(plan.selector)}`: {_count_line(known, total)}."
    )
