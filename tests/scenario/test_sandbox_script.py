"""`chatops sandbox --script`: the first five minutes of a new user, non-interactively."""

from __future__ import annotations

import os
import subprocess
import sys

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
