"""`mnscmd`, the command-line tool that ships with aliyun-mns-sdk, against `chatops emulators` as against
MNS: queue management, and a peek that leaves the message for the receive after it.

mnscmd reads its endpoint and keys from a config file (`--configfile`, section [MNSCredentials]); it
prints "<command> succeed!" or "<command> fail!" and exits 0 either way, so its output is what counts.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import credentials
from tests.support import emulators_command

MNSCMD = Path(sys.executable).with_name("mnscmd")


@pytest.fixture
def mnscmd(tmp_path):
    if not MNSCMD.exists():
        pytest.fail(f"{MNSCMD} is missing: aliyun-mns-sdk installs it")
    with emulators_command("--data-dir", str(tmp_path)) as (_proc, urls):
        config = tmp_path / "mnscredentials"
        config.write_text(
            "[MNSCredentials]\n"
            f"endpoint = {urls['mns']}\n"
            f"accesskeyid = {credentials.ALIBABA_ACCESS_KEY_ID}\n"
            f"accesskeysecret = {credentials.ALIBABA_ACCESS_KEY_SECRET}\n"
        )

        def run(command: str, *options: str, ok: bool = True) -> dict[str, str]:
            """Run `mnscmd COMMAND OPTIONS`; the `Name : value` lines it printed."""
            out = subprocess.run(
                [sys.executable, str(MNSCMD), command, *options, f"--configfile={config}"],
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
            verdict = f"{command} succeed!" if ok else f"{command} fail!"
            assert verdict in out, out
            return {m[1]: m[2].strip() for m in re.finditer(r"^(\w+)\s*:(.*)$", out, re.M)} | {"_out": out}

        yield run, urls["mns"]


def test_queue_management_as_against_mns(mnscmd):
    run, endpoint = mnscmd
    assert f"QueueURL:{endpoint}/queues/{credentials.MNS_QUEUE}" in run("listqueue")["_out"]
    created = run(
        "createqueue", "--queuename=ops-work", "--vistimeout=60", "--retentionperiod=3600", "--waitsec=2"
    )
    assert f"QueueURL:{endpoint}/queues/ops-work" in created["_out"]
    run("createqueue", "--queuename=ops-work", "--vistimeout=60", "--retentionperiod=3600", "--waitsec=2")
    refused = run("createqueue", "--queuename=ops-work", "--vistimeout=61", ok=False)
    assert "QueueAlreadyExist" in refused["_out"]
    run("createqueue", "--queuename=ops-other")
    listed = run("listqueue", "--prefix=ops-", "--retnum=1")
    assert f"QueueURL:{endpoint}/queues/ops-other" in listed["_out"] and listed["NextMarker"]
    rest = run("listqueue", "--prefix=ops-", "--retnum=1", f"--marker={listed['NextMarker']}")
    assert f"QueueURL:{endpoint}/queues/ops-work" in rest["_out"] and "NextMarker" not in rest
    attrs = run("getqueueattr", "--queuename=ops-work")
    assert (attrs["VisibilityTimeout"], attrs["MessageRetentionPeriod"], attrs["PollingWaitSeconds"]) == (
        "60",
        "3600",
        "2",
    )
    assert attrs["ActiveMessages"] == "0" and attrs["QueueName"] == "ops-work"
    run("setqueueattr", "--queuename=ops-work", "--waitsec=0")
    assert run("getqueueattr", "--queuename=ops-work")["PollingWaitSeconds"] == "0"
    run("deletequeue", "--queuename=ops-other")
    assert "QueueNotExist" in run("getqueueattr", "--queuename=ops-other", ok=False)["_out"]


def test_peek_leaves_the_message_for_receive_and_delete(mnscmd):
    run, _ = mnscmd
    sent = run("sendmessage", f"--queuename={credentials.MNS_QUEUE}", "--body=restart web-1")
    for _ in range(2):
        peeked = run("peekmessage", f"--queuename={credentials.MNS_QUEUE}")
        assert peeked["MessageID"] == sent["MessageID"] and peeked["DequeueCount"] == "0"
        assert peeked["FirstDequeueTime"] == "0"
    attrs = run("getqueueattr", f"--queuename={credentials.MNS_QUEUE}")
    assert (attrs["ActiveMessages"], attrs["InactiveMessages"]) == ("1", "0")
    got = run("receivemessage", f"--queuename={credentials.MNS_QUEUE}", "--waitsec=1")
    assert got["MessageID"] == sent["MessageID"] and got["DequeueCount"] == "1"
    assert got["MessageBody"] == "b'restart web-1'"  # mnscmd Base64-encodes on send and decodes on receive
    assert "MessageNotExist" in run("peekmessage", f"--queuename={credentials.MNS_QUEUE}", ok=False)["_out"]
    attrs = run("getqueueattr", f"--queuename={credentials.MNS_QUEUE}")
    assert (attrs["ActiveMessages"], attrs["InactiveMessages"]) == ("0", "1")
    run("deletemessage", f"--queuename={credentials.MNS_QUEUE}", f"--handle={got['ReceiptHandle']}")
    stale = run(
        "deletemessage", f"--queuename={credentials.MNS_QUEUE}", f"--handle={got['ReceiptHandle']}", ok=False
    )
    assert "MessageNotExist" in stale["_out"]
    attrs = run("getqueueattr", f"--queuename={credentials.MNS_QUEUE}")
    assert (attrs["ActiveMessages"], attrs["InactiveMessages"], attrs["DelayMessages"]) == ("0", "0", "0")
