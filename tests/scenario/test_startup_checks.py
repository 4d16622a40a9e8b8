"""Start-up validation through the real entry point: `chatops worker` refuses what `chatops web` refuses,
with the same one line; `chatops sandbox --script` with a file that cannot be read says so in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import worker_process


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        ({}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": "s"}, "SLACK_BOT_TOKEN"),
    ],
)
def test_worker_and_web_refuse_the_same_missing_setting_with_the_same_line(tmp_path, extra, name):
    env = {"PATH": "/usr/bin:/bin", "CHATOPS_DATA_DIR": str(tmp_path), **extra}
    worker = _run(["worker"], env)
    web = _run(["web", "--port", "0"], env)
    assert worker.returncode == 2 and web.returncode == 2, worker.stderr + web.stderr
    lines = worker.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], worker.stderr
    assert worker.stderr == web.stderr
    assert not (tmp_path / "queue.db").exists() and list(tmp_path.iterdir()) == []  # nothing was opened


def test_sandbox_with_a_missing_script_prints_one_line_and_exits_2(tmp_path):
    missing = tmp_path / "nonexistent.script"
    proc = _run(
        ["sandbox", "--script", str(missing), "--data-dir", str(tmp_path / "data")], {"PATH": "/usr/bin:/bin"}
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "No such file" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_the_worker_serves_its_metrics_when_asked(tmp_path):
    import os
    import urllib.request

    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(
        SLACK_SIGNING_SECRET="s",
        SLACK_BOT_TOKEN="xoxb-1",
        CHATOPS_DATA_DIR=str(tmp_path),
        CHATOPS_LOG_LEVEL="ERROR",
    )
    env.pop("REDIS_URL", None)
    with worker_process(env) as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        assert resp.status == 200 and "# HELP chatops_jobs_total" in text
