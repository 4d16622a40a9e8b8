"""Runbook definitions, their validation, template rendering, cron times and the step state machine."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import ConfigError
from bot.policy import load_policy
from bot.registry import Registry
from handlers.runbooks import machine
from handlers.runbooks.model import Runbook, failure_cycle, fires_between, next_fire
from handlers.runbooks.render import usage_with_params

BOOK = """
params:
  day: {type: str, default: today, pattern: "^[a-z0-9-]+$"}
  count: {type: int, default: 2, min: 1, max: 5}
steps:
  - {name: start, power: start, selector: "tag:role=batch", wait: true}
  - {name: batch, run: "process {{ day | quote }} {{ count }}", selector: "tag:role=batch", on_failure: [stop_all]}
  - {name: stop, power: stop, selector: "tag:role=batch"}
  - {notify: "batch {{ batch.status }}: {{ batch.output }}", channel: C1, when: {failed: batch}}
recovery:
  - {name: stop_all, power: stop, selector: "tag:role=batch", on_failure: continue}
"""


def book(text: str = BOOK) -> Runbook:
    return Runbook.model_validate(yaml.safe_load(text))


def policy_error(tmp_path, runbooks: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text("timezone: UTC\nrunbooks:\n" + runbooks)
    with pytest.raises(ConfigError) as caught:
        load_policy(path, Registry.discover())
    return str(caught.value)


def test_a_runbook_reads_its_steps_kinds_and_defaults():
    b = book()
    assert [s.kind for s in b.steps] == ["power", "run", "power", "notify"]
    assert b.concurrency == 1 and b.steps[0].on_failure == "abort" and b.steps[1].success == "all"
    assert b.steps[3].when.failed == "batch" and b.recovery[0].on_failure == "continue"


@pytest.mark.parametrize(
    ("steps", "says"),
    [
        ("[{sleep: 3}]", "runbooks.nb.steps[0]: unknown key `sleep`"),
        ("[{run: ls}]", "runbooks.nb.steps[0]: selector: a run step needs a `selector`"),
        ("[{power: start}]", "selector: a power step needs a `selector`"),
        ('[{notify: "{{ nope }}"}]', "steps[0].notify: {{ nope }} is not a parameter"),
        ('[{notify: "{{ later.status }}"}, {name: later, notify: x}]', "steps[0].notify: {{ later }}"),
        (
            "[{name: a, notify: x, on_failure: [b]}, {name: b, notify: y, on_failure: [a]}]",
            "on_failure: a cycle (a → b → a)",
        ),
        ("[{notify: x, on_failure: [ghost]}]", "there is no step named 'ghost'"),
        ("[{wait: soon}]", "is not a duration"),
        ("[{run: ls, selector: 'tag:x=y', success: '150%'}]", "success:"),
    ],
)
def test_a_bad_runbook_stops_start_up_naming_the_field(tmp_path, steps, says):
    assert says in policy_error(tmp_path, f"  nb:\n    steps: {steps}\n")


@pytest.mark.parametrize(
    ("trigger", "says"),
    [
        ('{cron: "61 * * * *"}', "trigger.cron: '61 * * * *' is not a cron expression"),
        (
            '{cron: "0 2 * * *", timezone: Mars/Olympus}',
            "trigger.timezone: 'Mars/Olympus' is not an IANA time zone",
        ),
    ],
)
def test_a_bad_cron_or_zone_names_the_field(tmp_path, trigger, says):
    assert says in policy_error(tmp_path, f"  nb:\n    trigger: {trigger}\n    steps: [{{notify: x}}]\n")


def test_a_triggered_runbook_needs_defaults_and_known_templates(tmp_path):
    missing = policy_error(
        tmp_path,
        '  nb:\n    params: {d: {type: str, pattern: "^a$"}}\n    trigger: {cron: "0 2 * * *"}\n    steps: [{notify: x}]\n',
    )
    assert "runbooks.nb.params.d: a runbook with a trigger needs a default" in missing
    template = policy_error(tmp_path, "  nb:\n    steps: [{template: nope, selector: 'tag:a=b'}]\n")
    assert "runbooks.nb.steps[0].template: there is no run template 'nope'" in template


def test_templates_render_parameters_and_earlier_results_in_the_sandbox():
    b = book()
    state = machine.start_state(b, "rb1", "nb", {"day": "mon; rm -rf /", "count": 3})
    machine.finish_step(b, state, 0, "succeeded", "started", {"ok": 2}, 10.0)
    values = machine.context(b, state)
    assert machine.render(b.steps[1].run, values) == "process 'mon; rm -rf /' 3"
    assert machine.render("{{ start.status }} {{ start.ok }}", values) == "succeeded 2"
    with pytest.raises(machine.RenderError):
        machine.render("{{ batch.output }}", values)  # not run yet: undefined is an error, never ""
    with pytest.raises(machine.RenderError):
        machine.render("{{ ''.__class__.__mro__ }}", values)  # the sandbox refuses it


def test_a_failure_runs_the_named_recovery_steps_then_ends_the_run():
    b = book()
    state = machine.start_state(b, "rb1", "nb", {})
    machine.finish_step(b, state, 0, "succeeded", "", {}, 1.0)
    assert machine.current(state) == 1
    machine.finish_step(b, state, 1, "failed", "exit 3", {}, 2.0)
    assert machine.current(state) == 4  # stop_all, then nothing: the rest of the main steps is dropped
    machine.finish_step(b, state, 4, "failed", "", {}, 3.0)  # on_failure: continue
    assert machine.current(state) is None and machine.outcome(state) == "failed"


def test_continue_goes_on_and_when_skips_or_runs():
    b = book(BOOK.replace("on_failure: [stop_all]", "on_failure: continue"))
    state = machine.start_state(b, "rb1", "nb", {})
    for i, status in ((0, "succeeded"), (1, "failed"), (2, "succeeded")):
        machine.finish_step(b, state, i, status, "", {}, float(i))
    assert machine.current(state) == 3 and machine.should_run(b, state, b.steps[3])
    state2 = machine.start_state(b, "rb2", "nb", {})
    machine.finish_step(b, state2, 1, "succeeded", "", {}, 1.0)
    assert not machine.should_run(b, state2, b.steps[3])


def test_cancel_drops_pending_main_steps_but_keeps_recovery():
    b = book()
    state = machine.start_state(b, "rb1", "nb", {})
    machine.finish_step(b, state, 0, "succeeded", "", {}, 1.0)
    machine.step_state(state, 1)["status"] = "running"
    machine.finish_step(b, state, 1, "cancelled", "stopped", {}, 2.0)
    machine.cancel(b, state, 2.0)
    assert machine.current(state) == 4 and machine.outcome(state) == "cancelled"


@pytest.mark.parametrize(
    ("rule", "ok", "total", "met"),
    [
        ("all", 3, 3, True),
        ("all", 2, 3, False),
        ("any", 1, 9, True),
        ("50%", 2, 4, True),
        ("50%", 1, 4, False),
        ("any", 0, 0, False),
    ],
)
def test_success_rules(rule, ok, total, met):
    assert machine.success_met(rule, ok, total) is met


def test_cron_times_are_local_to_the_zone_across_dst():
    b = book('trigger: {cron: "30 2 * * *", timezone: Europe/Berlin}\nsteps: [{notify: x}]')
    berlin = ZoneInfo("Europe/Berlin")
    # 2027-03-28: 02:30 does not exist in Berlin (clocks jump 02:00 → 03:00); it fires once that day
    before = dt.datetime(2027, 3, 27, 12, 0, tzinfo=berlin)
    first = next_fire(b, before, None)
    assert first.astimezone(berlin).date() == dt.date(2027, 3, 28)
    after = next_fire(b, first, None)
    assert after.astimezone(berlin).replace(tzinfo=None) == dt.datetime(2027, 3, 29, 2, 30)
    winter = next_fire(b, dt.datetime(2027, 1, 10, 12, 0, tzinfo=dt.UTC), None)
    assert winter.astimezone(dt.UTC).hour == 1  # 02:30 CET is 01:30 UTC
    latest = fires_between(
        b, dt.datetime(2027, 1, 10, tzinfo=dt.UTC), dt.datetime(2027, 1, 13, tzinfo=dt.UTC), None
    )
    assert latest.astimezone(berlin).day == 12


def test_usage_shows_the_parameters():
    text = usage_with_params("nb", book())
    assert text.startswith("/ecs runbook run nb [day=…] [count=…]")
    assert "day: matching ^[a-z0-9-]+$, default today" in text and "count: a whole number ≥ 1 ≤ 5" in text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 7), max_size=3), min_size=1, max_size=8))
def test_failure_cycles_are_found_exactly_when_the_graph_has_one(edges):
    n = len(edges)
    steps = [
        {"name": f"s{i}", "notify": "x", "on_failure": [f"s{j}" for j in sorted(set(e)) if j < n] or "abort"}
        for i, e in enumerate(edges)
    ]
    graph = {i: {j for j in e if j < n} for i, e in enumerate(edges)}

    def cyclic() -> bool:
        seen, stack = set(), set()

        def dfs(v):
            seen.add(v)
            stack.add(v)
            for w in graph[v]:
                if w in stack or (w not in seen and dfs(w)):
                    return True
            stack.discard(v)
            return False

        return any(v not in seen and dfs(v) for v in graph)

    if cyclic():
        with pytest.raises(ValueError, match="a cycle"):
            Runbook.model_validate({"steps": steps})
    else:
        b = Runbook.model_validate({"steps": steps})
        assert failure_cycle(b) is None


@pytest.mark.parametrize(
    ("trigger", "event", "matches"),
    [
        ("Instance:StateChange", "Instance:StateChange", True),
        ("Instance:StateChange", "Instance:PreemptibleInstanceInterruption", False),
        ("Instance:SystemMaintenance.Reboot", "Instance:SystemMaintenance.Reboot:Scheduled", True),
        ("Instance:SystemMaintenance.Reboot", "Instance:SystemMaintenance.Reboot:Executing", True),
        ("Instance:SystemMaintenance.Reboot", "Instance:SystemMaintenance.Reboot:Executed", False),
        ("Instance:SystemMaintenance.Reboot", "Instance:SystemMaintenance.Reboot:Canceled", False),
        ("Instance:SystemMaintenance.Reboot", "Instance:SystemFailure.Reboot:Scheduled", False),
        ("Instance:SystemMaintenance.Reboot:Executed", "Instance:SystemMaintenance.Reboot:Executed", True),
        ("Instance:SystemMaintenance.Reboot:Executed", "Instance:SystemMaintenance.Reboot:Scheduled", False),
        ("Instance:SystemMaintenance.*", "Instance:SystemMaintenance.Stop:Canceled", True),
    ],
)
def test_an_event_trigger_names_a_system_event_with_or_without_its_status(trigger, event, matches):
    from handlers.runbooks.model import Event

    found = Event(name=trigger)
    assert found.matches(event) is matches
