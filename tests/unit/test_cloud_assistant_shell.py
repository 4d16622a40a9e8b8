"""The Cloud Assistant emulator's default command behaviour: durations, exit codes and output."""

from __future__ import annotations

from sandbox.cloud_assistant_shell import BIG_OUTPUT_BYTES, default_duration, run_script

BOX = {"InstanceId": "i-bp1box", "InstanceName": "dev-web-01", "OSType": "linux"}
WIN = {"InstanceId": "i-bp1win", "InstanceName": "dev-api-04", "OSType": "windows"}


def test_without_a_sleep_a_run_takes_a_fixed_time_per_instance_and_script():
    durations = {default_duration(f"i-{n}", "uptime") for n in range(200)}
    assert all(0.3 <= d <= 3.0 for d in durations) and len(durations) > 100
    assert run_script(BOX, "uptime", "RunShellScript")[0] == default_duration("i-bp1box", "uptime")
    assert run_script(BOX, "uptime", "RunShellScript")[:2] == run_script(BOX, "uptime", "RunShellScript")[:2]


def test_sleeps_add_up_across_chains_and_exit_stops_the_script():
    assert run_script(BOX, "sleep 1; sleep 0.5 && echo hi", "RunShellScript") == (1.5, 0, "hi\n")
    assert run_script(BOX, "sleep 2\nexit 7\necho never", "RunShellScript") == (2.0, 7, "")
    assert run_script(BOX, "false && echo no || echo yes", "RunShellScript")[1:] == (0, "yes\n")
    assert run_script(BOX, "false", "RunShellScript")[1] == 1


def test_known_commands_print_what_a_linux_box_would():
    _, code, out = run_script(BOX, "hostname; uptime; cat /etc/os-release", "RunShellScript")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "dev-web-01" and "load average:" in lines[1]
    assert 'PRETTY_NAME="Alibaba Cloud Linux 3 (Soaring Falcon)"' in lines
    assert run_script(BOX, "yes | head -c 100", "RunShellScript")[2] == "y\n" * 50
    assert len(run_script(BOX, "sh /opt/bigoutput", "RunShellScript")[2]) == BIG_OUTPUT_BYTES > 24576
    assert run_script(BOX, "systemctl restart nginx", "RunShellScript")[1:] == (
        0,
        "dev-web-01: systemctl: done\n",
    )


def test_powershell_and_bat_scripts():
    duration, code, out = run_script(
        WIN, "Start-Sleep -Seconds 2; Get-Date; hostname; exit 5", "RunPowerShellScript"
    )
    assert (duration, code) == (2.0, 5) and out.strip().endswith("dev-api-04")
    assert run_script(WIN, "timeout /t 3 /nobreak & echo done", "RunBatScript") == (3.0, 0, "done\n")
    assert run_script(WIN, "Start-Sleep -Milliseconds 500; Write-Output ok", "RunPowerShellScript") == (
        0.5,
        0,
        "ok\n",
    )
