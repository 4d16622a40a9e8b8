"""What a runbook looks like in Slack: the preview of a run, the one message a run keeps (each step with
an icon, its elapsed time and a one-line result), a step's report in the thread, and the summary. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from bot import blocks
from bot.render import escape, plural
from handlers.runbooks.machine import RenderError, render
from handlers.runbooks.model import Runbook, Step

ICONS = {
    "pending": ":white_circle:",
    "running": ":arrows_counterclockwise:",
    "waiting": ":raised_hand:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "skipped": ":fast_forward:",
    "cancelled": ":no_entry_sign:",
}
HEADLINES = {
    "succeeded": ":white_check_mark: succeeded",
    "failed": ":x: failed",
    "cancelled": ":no_entry_sign: cancelled",
}
LINE = 150


def seconds_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def describe(step: Step) -> str:
    """What a step does, from its definition (templates shown as written)."""
    if step.kind == "power":
        return f"{step.power} `{step.selector}`" + (" and wait" if step.wait is not False else "")
    if step.kind == "run":
        what = f"template `{step.template}`" if step.template else f"`{_one_line(step.run or '')}`"
        return f"run {what} on `{step.selector}` (success: {step.success})"
    if step.kind == "wait":
        if step.wait_seconds is not None:
            return f"wait {seconds_text(step.wait_seconds)}"
        return f"wait until `{step.wait.selector}` is {step.wait.status}"
    if step.kind == "approve":
        who = f" by {', '.join(step.approvers)}" if step.approvers else ""
        return f"approval{who}: {_one_line(step.approve or 'continue')}"
    if step.kind == "notify":
        where = f" in <#{step.channel}>" if step.channel else ""
        return f"notify{where}: {_one_line(step.notify or '')}"
    return f"PagerDuty incident: {_one_line(step.incident or '')}"


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= 80 else first[:79] + "…"


def rendered(step: Step, values: dict | None) -> str:
    """The step's description with its templates rendered where what they read is known."""
    said = describe(step)
    if values is None:
        return said
    try:
        return render(said, values)
    except RenderError:
        return said


def step_line(
    n: int, step: Step, entry: dict | None, now: float, live: str = "", values: dict | None = None
) -> str:
    entry = entry or {}
    status = entry.get("status", "pending")
    started, finished = entry.get("started_at"), entry.get("finished_at")
    elapsed = ""
    if started is not None:
        elapsed = f" · {seconds_text((finished or now) - started)}"
    tries = entry.get("tries", 0)
    again = f" · try {tries}" if tries > 1 else ""
    said = entry.get("summary") or (live if status in ("running", "waiting") else "")
    said = said if len(said) <= LINE else said[: LINE - 1] + "…"
    tail = f" — {said}" if said else ""
    return f"{ICONS.get(status, ':grey_question:')} *{n}. {escape(step.label)}* {escape(rendered(step, values))}{elapsed}{again}{tail}"


def run_message(
    name: str,
    run_id: str,
    book: Runbook,
    state: dict,
    now: float,
    requested_by: str,
    live: str = "",
    outcome: str | None = None,
    seconds: float | None = None,
    values: dict | None = None,
) -> tuple[str, list[dict]]:
    """The run's one message: a headline, a line per step (recovery steps once they are in play)."""
    steps = book.all_steps()
    shown = [
        i for i in range(len(steps)) if i < len(book.steps) or str(i) in state["steps"] or i in state["queue"]
    ]
    current = state["queue"][0] if state["queue"] else None
    lines = [
        step_line(n + 1, steps[i], state["steps"].get(str(i)), now, live if i == current else "", values)
        for n, i in enumerate(shown)
    ]
    if outcome is None:
        where = f"step {shown.index(current) + 1} of {len(shown)}" if current in shown else "finishing"
        head = f":gear: Runbook *{escape(name)}* run `{run_id}` — {where}"
        text = f"Runbook {name} run {run_id}: {where}"
    else:
        took = f" in {seconds_text(seconds or 0)}" if seconds is not None else ""
        head = f"{HEADLINES[outcome]} — Runbook *{escape(name)}* run `{run_id}`{took}"
        text = f"Runbook {name} run {run_id} {outcome}{took}"
    body = [
        blocks.section(head),
        blocks.section("\n".join(lines)),
        blocks.context(
            f"Requested by {requested_by} · `/ecs runbook status {run_id}` · a report per step in the thread"
        ),
    ]
    return text, body


def step_report(
    n: int, step: Step, status: str, summary: str, detail: list[dict] | None
) -> tuple[str, list[dict]]:
    head = (
        f"{ICONS.get(status, '')} *Step {n}: {escape(step.label)}* ({step.kind}) {status} — {escape(summary)}"
    )
    return f"Step {n} {step.label}: {status} — {summary}", [blocks.section(head), *(detail or [])[:20]]


def preview(
    name: str, book: Runbook, params: dict, lines: Sequence[str], targets: int, concurrency_note: str = ""
) -> tuple[str, list[dict]]:
    given = ", ".join(f"`{escape(k)}={escape(v)}`" for k, v in params.items()) or "none"
    body = [
        blocks.section(
            f"*Run runbook {escape(name)}* on {plural(targets, 'instance')} — parameters: {given}"
        ),
    ]
    if book.description:
        body.append(blocks.context(escape(book.description)))
    body.append(blocks.section("\n".join(lines)))
    if concurrency_note:
        body.append(blocks.context(concurrency_note))
    return f"Preview: run runbook {name}", body


def usage_with_params(name: str, book: Runbook) -> str:
    """`/ecs runbook run NAME …` with the runbook's parameters, for a usage message."""
    parts, about = [], []
    for key, p in book.params.items():
        parts.append(f"{key}=…" if p.default is None else f"[{key}=…]")
        rule = f"one of {', '.join(p.enum)}" if p.enum else (f"matching {p.pattern}" if p.pattern else p.type)
        if p.type == "int":
            rule = (
                "a whole number"
                + (f" ≥ {p.min}" if p.min is not None else "")
                + (f" ≤ {p.max}" if p.max is not None else "")
            )
        default = f", default {p.default}" if p.default is not None else ", required"
        about.append(f"  {key}: {rule}{default}" + (f" — {p.description}" if p.description else ""))
    line = f"/ecs runbook run {name} {' '.join(parts)}".rstrip()
    return "\n".join([line, *about]) if about else line
