"""A runbook run's state machine: which step runs next, what a step's outcome does to the rest, what the
templates of the next step may read. Pure: the state is a plain dict, saved with the run's job after
every transition (handlers.runbooks.job), so a worker that resumes it starts from the step it was in.

    state = {
      "run_id", "runbook", "params": {...},
      "queue": [2, 3],          # the steps still to run, the current one first
      "steps": {"1": {"status", "started_at", "finished_at", "summary", "result", "tries", "sub": {...}}},
      "outcome": None | "failed" | "cancelled",   # set once a step aborts the run or it is cancelled
    }

A step's status is pending → running → succeeded | failed | skipped | cancelled (| waiting, for an
approval). A failed step with `on_failure: continue` lets the run go on; `abort` (the default) ends it;
a list of names runs those steps, then ends it. A cancelled step runs its `on_failure` steps, if any.
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateError

from handlers.ecs.run_templates import compiled
from handlers.runbooks.model import Runbook, Step

FINAL = ("succeeded", "failed", "skipped", "cancelled")
OUTPUT_KEPT = 4000


class RenderError(ValueError):
    """A step's template could not be rendered with what the run knows."""


def start_state(book: Runbook, run_id: str, name: str, params: dict[str, Any]) -> dict:
    return {
        "run_id": run_id,
        "runbook": name,
        "params": dict(params),
        "queue": list(range(len(book.steps))),
        "steps": {},
        "outcome": None,
    }


def step_state(state: dict, index: int) -> dict:
    return state["steps"].setdefault(str(index), {"status": "pending", "tries": 0, "sub": {}})


def current(state: dict) -> int | None:
    """The step to run (or resume) now; None when the run is over."""
    while state["queue"]:
        i = state["queue"][0]
        if step_state(state, i)["status"] not in FINAL:
            return i
        state["queue"].pop(0)
    return None


def should_run(book: Runbook, state: dict, step: Step) -> bool:
    """False when the step's `when` names a step that did not end as asked."""
    if step.when is None:
        return True
    other = state["steps"].get(str(book.index_of(step.when.step)), {}).get("status")
    return other == ("succeeded" if step.when.succeeded else "failed")


def _failure_steps(book: Runbook, step: Step) -> list[int]:
    return [book.index_of(n) for n in step.on_failure] if isinstance(step.on_failure, tuple) else []


def finish_step(
    book: Runbook, state: dict, index: int, status: str, summary: str, result: dict, now: float
) -> None:
    """Record a step's outcome and decide what runs next."""
    entry = step_state(state, index)
    entry.update(status=status, summary=summary, result=result, finished_at=now)
    entry.setdefault("started_at", now)
    queue: list[int] = state["queue"]
    if queue and queue[0] == index:
        queue.pop(0)
    step = book.all_steps()[index]
    if status == "failed" and step.on_failure == "continue":
        return
    if status in ("failed", "cancelled"):
        state["outcome"] = state.get("outcome") or status
        todo = [i for i in _failure_steps(book, step) if step_state(state, i)["status"] not in FINAL]
        recovering = [i for i in queue if i >= len(book.steps)]  # a recovery that ran into a failure
        state["queue"] = [*todo, *[i for i in recovering if i not in todo]]


def cancel(book: Runbook, state: dict, now: float) -> None:
    """A run cancelled between steps: the pending main steps are dropped (recovery steps still run)."""
    state["outcome"] = state.get("outcome") or "cancelled"
    for i in list(state["queue"]):
        if i < len(book.steps) and step_state(state, i)["status"] == "pending":
            state["queue"].remove(i)
            step_state(state, i).update(status="skipped", summary="cancelled before it ran", finished_at=now)


def outcome(state: dict) -> str:
    """succeeded | failed | cancelled, once the run is over."""
    if state.get("outcome"):
        return state["outcome"]
    failed = any(s.get("status") == "failed" for s in state["steps"].values())
    return "failed" if failed else "succeeded"


def context(book: Runbook, state: dict) -> dict[str, Any]:
    """What a step's templates may read: the parameters, `run_id`, `runbook`, earlier steps' results."""
    values: dict[str, Any] = dict(state.get("params") or {})
    values.update(run_id=state["run_id"], runbook=state["runbook"])
    for i, step in enumerate(book.all_steps()):
        if step.name and str(i) in state["steps"]:
            entry = state["steps"][str(i)]
            values[step.name] = {
                "status": entry.get("status", "pending"),
                "summary": entry.get("summary", ""),
                **(entry.get("result") or {}),
            }
    return values


def render(text: str, values: dict[str, Any]) -> str:
    if "{" not in text:  # no expression, statement or comment: nothing to render
        return text
    try:
        return compiled(text).render(**values)
    except TemplateError as exc:
        raise RenderError(str(exc)) from None


def can_render(text: str, values: dict[str, Any]) -> bool:
    try:
        render(text, values)
    except RenderError:
        return False
    return True


def success_met(rule: str, ok: int, total: int) -> bool:
    """`success: all | any | N%` for `ok` of `total` instances."""
    if total == 0:
        return False
    if rule == "all":
        return ok == total
    if rule == "any":
        return ok > 0
    return ok * 100 >= int(rule.rstrip("%")) * total


def backoff(retry_seconds: float, tries: int) -> float:
    """The pause before try number `tries + 1`: the backoff, doubled after every further failure."""
    return retry_seconds * (2 ** max(0, tries - 1))


def clip(text: str, limit: int = OUTPUT_KEPT) -> str:
    return text if len(text) <= limit else text[:limit] + "\n…"
