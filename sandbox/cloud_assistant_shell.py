"""What a command does on an emulated instance: the Cloud Assistant emulator's default
`command_behaviour(instance, text, type) -> (duration_seconds, exit_code, output)`.

It reads the script a statement at a time (`;`, `&&`, `||` and new lines; Bat's `&` too) and knows a
few commands well enough for a ChatOps sandbox:

- shell: `sleep N` (the run takes N seconds), `exit N`, `true` / `false`, `echo TEXT`, `hostname`,
  `uptime`, `cat /etc/os-release`, `whoami`, `date`, `yes | head -c N` (N bytes of output) and anything
  with `bigoutput` in it (30,000 bytes: more than the 24 KB the API keeps);
- PowerShell / Bat: `Start-Sleep [-Seconds|-Milliseconds] N`, `timeout /t N`, `exit [/b] N`,
  `echo` / `Write-Output` / `Write-Host TEXT`, `hostname`, `Get-Date`, `whoami`, `bigoutput`;
- anything else prints one short line and succeeds.

Without a sleep a run takes a small deterministic time between 0.3 and 3 s, drawn from the instance
id and the script, so that the same call behaves the same way every time.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import time

BIG_OUTPUT_BYTES = 30000
_SEPARATORS = {"linux": re.compile(r"(&&|\|\||;|\n)"), "windows": re.compile(r"(&&|\|\||&|;|\r?\n)")}
_SLEEP = re.compile(r"^sleep\s+(\d+(?:\.\d+)?)([smh]?)$")
_PS_SLEEP = re.compile(
    r"^(?:start-sleep|sleep)\s+(?:-(seconds|s|milliseconds|m)\s+)?(\d+(?:\.\d+)?)$", re.IGNORECASE
)
_BAT_TIMEOUT = re.compile(r"^timeout\s+/t\s+(\d+)(?:\s+/nobreak)?(?:\s*>\s*nul)?$", re.IGNORECASE)
_EXIT = re.compile(r"^exit(?:\s+/b)?(?:\s+(-?\d+))?$", re.IGNORECASE)
_HEAD_BYTES = re.compile(r"^yes\s*\|\s*head\s+-c\s*(\d+)$")
_ECHO = re.compile(r"^(?:echo|write-output|write-host)(?:\s+(.*))?$", re.IGNORECASE | re.DOTALL)

OS_RELEASE = (
    'NAME="Alibaba Cloud Linux"\nVERSION="3 (Soaring Falcon)"\nID="alinux"\nID_LIKE="rhel fedora centos anolis"\n'
    'VERSION_ID="3"\nPLATFORM_ID="platform:al8"\nPRETTY_NAME="Alibaba Cloud Linux 3 (Soaring Falcon)"\n'
    'ANSI_COLOR="0;31"\nHOME_URL="https://www.aliyun.com/"\n'
)


def default_duration(instance_id: str, text: str) -> float:
    """0.3 to 3.0 s, the same for the same instance and script."""
    digest = hashlib.sha256(f"{instance_id}\0{text}".encode()).digest()
    return 0.3 + int.from_bytes(digest[:4], "big") % 2701 / 1000


def _family(command_type: str) -> str:
    return "linux" if command_type == "RunShellScript" else "windows"


def _echo_text(rest: str | None) -> str:
    if not rest:
        return ""
    try:
        words = shlex.split(rest)
    except ValueError:
        return rest.strip()
    if words[:1] == ["-n"] or words[:1] == ["-e"]:
        words = words[1:]
    return " ".join(words)


def _uptime(instance: dict) -> str:
    digest = hashlib.sha256(instance.get("InstanceId", "").encode()).digest()
    days, hours, minutes = digest[0] % 90 + 1, digest[1] % 24, digest[2] % 60
    load = digest[3] % 80 / 100
    clock = time.strftime("%H:%M:%S", time.gmtime())
    return (
        f" {clock} up {days} days, {hours:2d}:{minutes:02d},  1 user,  "
        f"load average: {load:.2f}, {load * 0.8:.2f}, {load * 0.6:.2f}"
    )


def _big_output() -> str:
    lines, size, n = [], 0, 0
    while size < BIG_OUTPUT_BYTES:
        n += 1
        line = f"line {n:05d} " + "x" * 53 + "\n"
        lines.append(line)
        size += len(line)
    return "".join(lines)[:BIG_OUTPUT_BYTES]


def _statement(instance: dict, stmt: str, family: str) -> tuple[float | None, int | None, str, bool]:
    """(seconds slept or None, exit code or None, output, whether the script exits here)."""
    name = instance.get("InstanceName", "")
    low = stmt.lower()
    if "bigoutput" in low:
        return None, 0, _big_output(), False
    exit_match = _EXIT.match(stmt)
    if exit_match:
        return None, int(exit_match.group(1) or 0), "", True
    echo = _ECHO.match(stmt)
    if echo:
        return None, 0, _echo_text(echo.group(1)) + "\n", False
    if low == "hostname":
        return None, 0, name + "\n", False
    if family == "linux":
        sleep = _SLEEP.match(stmt)
        if sleep:
            unit = {"": 1, "s": 1, "m": 60, "h": 3600}[sleep.group(2)]
            return float(sleep.group(1)) * unit, 0, "", False
        head = _HEAD_BYTES.match(stmt)
        if head:
            count = int(head.group(1))
            return None, 0, ("y\n" * (count // 2 + 1))[:count], False
        canned = {
            "true": (0, ""),
            "false": (1, ""),
            "uptime": (0, _uptime(instance) + "\n"),
            "cat /etc/os-release": (0, OS_RELEASE),
            "whoami": (0, "root\n"),
            "date": (0, time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()) + "\n"),
        }
    else:
        sleep = _PS_SLEEP.match(stmt)
        if sleep:
            scale = 0.001 if (sleep.group(1) or "").lower() in ("milliseconds", "m") else 1
            return float(sleep.group(2)) * scale, 0, "", False
        bat = _BAT_TIMEOUT.match(stmt)
        if bat:
            return float(bat.group(1)), 0, "", False
        canned = {
            "get-date": (0, time.strftime("\n%A, %B %d, %Y %I:%M:%S %p\n\n", time.gmtime())),
            "whoami": (0, "nt authority\\system\n"),
        }
    if low in canned:
        code, out = canned[low]
        return None, code, out, False
    word = stmt.split()[0]
    return None, 0, f"{name}: {word}: done\n", False


def run_script(instance: dict, text: str, command_type: str) -> tuple[float, int, str]:
    """The default behaviour: (duration in seconds, exit code, output)."""
    family = _family(command_type)
    parts = _SEPARATORS[family].split(text)
    slept: float | None = None
    code, output = 0, []
    joiner = ";"
    for index in range(0, len(parts), 2):
        stmt = parts[index].strip()
        if index > 0:
            joiner = parts[index - 1]
        if not stmt or stmt.startswith(("#", "REM ", "rem ", "@echo")):
            continue
        if (joiner == "&&" and code != 0) or (joiner == "||" and code == 0):
            continue
        seconds, result, out, stop = _statement(instance, stmt, family)
        if seconds is not None:
            slept = (slept or 0.0) + seconds
        if result is not None:
            code = result
        output.append(out)
        if stop:
            break
    duration = slept if slept is not None else default_duration(instance.get("InstanceId", ""), text)
    return duration, code, "".join(output)
