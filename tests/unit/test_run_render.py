"""What a run looks like in Slack (handlers.ecs.run_render): the live line and the final report. Pure."""

from __future__ import annotations

from bot.run_model import InstanceRun
from handlers.ecs.run_render import preview, progress, report
from tests.unit.test_run_plan import linux
from tests.unit.test_run_plan import plan as run_plan


def plan(count: int = 8):
    """`uptime` on `count` running Linux instances with their agents, and one stopped instance."""
    fleet = [linux(n) for n in range(count)] + [linux(99, "Stopped")]
    return run_plan(fleet, {f"i-l{n}": True for n in range(count)})


def test_the_preview_shows_the_count_the_os_mix_the_command_and_who_cannot_run_it():
    shown = str(preview(plan()).blocks)
    assert "on 8 instances" in shown and "(8 Linux)" in shown and "uptime" in shown
    assert "Cannot run it (1)" in shown and "web-99" in shown and "Stopped: not running" in shown


def test_the_live_line_counts_statuses_names_the_slowest_and_shows_elapsed():
    p = plan()
    names = {i.instance_id: i.name for i in p.targets}
    runs = {"i-l0": InstanceRun("i-l0", "Success", 0), "i-l1": InstanceRun("i-l1", "Failed", 1)}
    runs |= {
        f"i-l{n}": InstanceRun(f"i-l{n}", "Running", start_time=f"2026-01-01T00:00:0{9 - n}Z")
        for n in range(2, 8)
    }
    text, body = progress(p, runs, ["t-1"], 12.4, "running", names)
    assert "2 of 8 done" in text and "1 Failed" in text and "1 Success" in text and "6 Running" in text
    assert "12 s" in text
    slowest = str(body)
    # the slowest are those running longest (the earliest start), five of them, then how many more
    assert "Still running: web-7 (Running), web-6 (Running), web-5 (Running), web-4" in slowest
    assert "+1 more" in slowest and "/ecs run stop t-1" in slowest


def test_output_cut_by_cloud_assistant_is_said_in_the_report_as_well_as_in_the_file():
    p = plan(2)
    runs = {
        "i-l0": InstanceRun("i-l0", "Success", 0, dropped=5424, output="x" * 24576),
        "i-l1": InstanceRun("i-l1", "Success", 0, output="short"),
    }
    text, body, file = report(p, runs, ["t-1"], 3.0, "U1", "<@U1>")
    assert "5,424 bytes were dropped" in file
    shown = str(body)
    assert "web-0" in shown and "5,424 bytes" in shown and "24 KB" in shown
