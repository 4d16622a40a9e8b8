"""`chatops sandbox --script`: the first five minutes of a new user, non-interactively."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import run_sandbox_script

ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def _run(script: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "sandbox", "--script", "-", "--data-dir", str(tmp_path)],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )


def test_help_script_passes_and_shows_a_useful_answer(tmp_path):
    proc = _run("help\n/ecs help\nas carol\n/ecs help\nexpect /ecs audit 5\n", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "> /ecs help" in out and "bootstrap admin" in out
    assert "(you are now carol" in out
    assert "0 failed step(s)" in out


def test_a_failing_step_makes_the_script_exit_non_zero(tmp_path):
    proc = _run("/ecs help\nclick 99\nexpect something-that-never-appears 0.5\n", tmp_path)
    assert proc.returncode == 1
    assert "there is no button [99]" in proc.stdout
    assert "2 failed step(s)" in proc.stdout


def test_buttons_are_numbered_per_message_and_click_means_the_latest(tmp_path):
    proc = _run(
        "\n".join(
            [
                "/ecs stop name:dev-web-01",
                "/ecs stop name:dev-web-19",
                "click 1",  # Confirm of the second preview, the one just above
                'expect "Stopped 1 of 1" 60',
                "/ecs status name:dev-web-19",
                "expect Stopped 10",
                "/ecs status name:dev-web-01",
                "expect Running 10",
                "click 2 of 1",  # the first preview stays reachable: its Cancel
                "expect Cancelled 10",
                "click 3 of 1",
                "help",
            ]
        ),
        tmp_path,
    )
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr  # only `click 3 of 1` fails
    assert "1 failed step(s)" in out and "there is no button [3] in message 1" in out
    assert out.count("[1] !Confirm: stop 1   [2] Cancel") == 2
    assert "(alice clicked [1] Confirm: stop 1 of message 2)" in out
    assert "(alice clicked [2] Cancel of message 1)" in out
    assert "click N of M" in out and "*Label is the suggested" in out and "!Label a dangerous" in out


def test_an_empty_channel_says_it_is_empty_and_an_unknown_one_fails(tmp_path):
    proc = _run("messages alerts\nmessages nowhere\n", tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "(#alerts is empty: no messages yet)" in proc.stdout
    assert "unknown channel 'nowhere'" in proc.stdout and "1 failed step(s)" in proc.stdout


def _leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("chatops-"))


def test_quitting_leaves_no_temporary_directories_behind(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**ENV, "TMPDIR": str(tmp)}
    args = [sys.executable, "-m", "bot.cli", "sandbox", "--data-dir", str(tmp_path / "data")]
    script = subprocess.run(
        [*args, "--script", "-"], input="/ecs help\n", capture_output=True, text=True, timeout=120, env=env
    )
    assert script.returncode == 0, script.stdout + script.stderr
    assert _leftovers(tmp) == []
    typed = subprocess.run(
        args, input="/ecs help\nquit\n", capture_output=True, text=True, timeout=120, env=env
    )
    assert typed.returncode == 0 and "bootstrap admin" in typed.stdout, typed.stdout + typed.stderr
    assert _leftovers(tmp) == []


def test_sigterm_leaves_no_temporary_directories_behind(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "sandbox", "--data-dir", str(tmp_path / "data")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**ENV, "TMPDIR": str(tmp)},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(b"ChatOps sandbox")  # the banner: everything is up
        assert len(_leftovers(tmp)) == 2
        proc.terminate()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert _leftovers(tmp) == []


ROOT = Path(__file__).resolve().parents[2]
WALK = ROOT / "sandbox" / "data" / "readme_walk.script"


def test_the_readme_walk_passes_and_covers_every_example_of_the_readme(tmp_path):
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("## Running it for real", 1)[0]
    typed = [
        ln.split("chatops> ", 1)[1].split("  #")[0].strip() for ln in quick.splitlines() if "chatops> " in ln
    ]
    more = quick.split("More to try:", 1)[1].split("\n\n", 1)[0]
    tried = [t for t in re.findall(r"`([^`]+)`", more) if t.startswith(("/", "inject"))]
    walk = [ln.strip() for ln in WALK.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert typed and tried and not [c for c in typed + tried if c not in walk]
    proc = run_sandbox_script(tmp_path, WALK, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 failed step(s)" in proc.stdout and all(f"> {line}" in proc.stdout for line in walk)


def test_the_berlin_dst_night_script_passes(tmp_path):
    """The sandbox's DST night: the batch night runs through the change and ends at 06:00 local time."""
    script = ROOT / "sandbox" / "data" / "berlin_dst_night.script"
    proc = run_sandbox_script(tmp_path, script)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 failed step(s)" in proc.stdout
    assert "Last acted on:* stopped at Sun" in proc.stdout and "06:00 CE" in proc.stdout


def test_the_ecs_run_dev_script_shows_live_progress_a_per_instance_report_and_a_file(tmp_path):
    """Issue 13's "done when": `/ecs run tag:env=dev -- uptime` in the sandbox."""
    script = ROOT / "sandbox" / "data" / "ecs_run_dev.script"
    proc = run_sandbox_script(tmp_path, script)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert "0 failed step(s)" in out
    assert "chatops (edited):" in out and re.search(r"Running on 9 — running · \d of 9 done", out)
    assert re.search(r"Ran on 9 in \d+ s: 9 Success", out) and "[file ecs-run-" in out
