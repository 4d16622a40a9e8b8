"""Cloud Assistant in the ECS emulator, driven by the real alibabacloud_ecs20140526 client over loopback:
an invocation's life (Pending, Running, Success / Failed / Timeout), refusals (Aborted, Invalid),
output (Base64, truncation), paging, ClientToken, StopInvocation and DescribeCloudAssistantStatus."""

from __future__ import annotations

import base64

import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_tea_openapi.exceptions import ClientException

from bot.adapters.ecs_support import make_client
from bot.config import load_settings
from sandbox import cloud_assistant_wire, credentials
from sandbox.cloud_assistant_shell import run_script
from sandbox.ecs_emulator import EcsEmulator, build_sandbox_ecs
from sandbox.ecs_fleet import AGENT_STATES
from tests.support import wait_for

REGION = credentials.REGION_ID


@pytest.fixture
def ecs():
    emu = EcsEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture
def client(ecs):
    return make_client(
        load_settings(
            {
                "ECS_ENDPOINT": ecs.base_url,
                "ALIBABA_CLOUD_ACCESS_KEY_ID": credentials.ALIBABA_ACCESS_KEY_ID,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": credentials.ALIBABA_ACCESS_KEY_SECRET,
                "ALIBABA_CLOUD_REGION_ID": REGION,
            }
        )
    )


def quick(inst, text, kind):
    """The default behaviour's exit code and output, in 50 ms."""
    return (0.05, *run_script(inst, text, kind)[1:])


def linux(ecs, count: int = 1, status: str = "Running") -> list[str]:
    return [ecs.add_instance(f"box-{len(ecs.instances) + 1:03d}", status=status) for _ in range(count)]


def run(client, ids, content, **kw):
    request = ecs_models.RunCommandRequest(
        region_id=REGION,
        type=kw.pop("type", "RunShellScript"),
        command_content=content,
        instance_id=ids,
        **kw,
    )
    return client.run_command(request).body


def invocation(client, invoke_id, **kw):
    request = ecs_models.DescribeInvocationsRequest(region_id=REGION, invoke_id=invoke_id, **kw)
    found = client.describe_invocations(request).body.invocations.invocation
    assert len(found) == 1
    return found[0]


def per_instance(inv) -> dict:
    return {i.instance_id: i for i in inv.invoke_instances.invoke_instance}


def settled(client, invoke_id, **kw):
    """The invocation once it is over (a deadline, not a speed check)."""
    return wait_for(
        lambda: (
            (inv := invocation(client, invoke_id, **kw)).invoke_status
            in ("Finished", "Failed", "PartialFailed", "Stopped")
            and inv
        ),
        message=f"{invoke_id} to finish",
    )


def refused(call) -> ClientException:
    with pytest.raises(ClientException) as caught:
        call()
    return caught.value


def test_a_run_goes_pending_running_success_on_the_wire(ecs, client, monkeypatch):
    monkeypatch.setattr(cloud_assistant_wire, "PENDING_SECONDS", 1.0)
    ecs.command_behaviour = lambda inst, text, kind: (1.0, 0, f"{inst['InstanceName']}: {text}\n")
    ids = linux(ecs, 2)
    body = run(client, ids, "systemctl restart nginx", timeout=30, name="restart")
    assert body.invoke_id.startswith("t-") and body.command_id.startswith("c-")
    seen = []
    while not seen or seen[-1][0] not in ("Success", "Failed"):
        inv = invocation(client, body.invoke_id, include_output=True)
        seen.append(
            (inv.invocation_status, inv.invoke_status, [i.exit_code for i in per_instance(inv).values()])
        )
    overall = [s for s, _, _ in seen]
    assert overall[0] == "Pending" and "Running" in overall and overall[-1] == "Success"
    assert overall.index("Pending") < overall.index("Running") < overall.index("Success")
    assert all(codes == [None, None] for status, _, codes in seen if status != "Success")
    assert seen[-1][1] == "Finished" and seen[-1][2] == [0, 0]
    rows = per_instance(inv)
    assert set(rows) == set(ids)
    first = rows[ids[0]]
    assert base64.b64decode(first.output).decode() == "box-001: systemctl restart nginx\n"
    assert (first.invocation_status, first.instance_invoke_status, first.dropped) == (
        "Success",
        "Finished",
        0,
    )
    assert first.start_time and first.finish_time and first.error_code == ""
    assert inv.command_type == "RunShellScript" and inv.timeout == 30 and inv.command_name == "restart"
    assert base64.b64decode(inv.command_content).decode() == "systemctl restart nginx"
    sent = ecs.calls_named("RunCommand")[0].request.query
    assert sent["InstanceId.1"] == ids[0] and sent["InstanceId.2"] == ids[1] and sent["Timeout"] == "30"
    assert ecs.calls_named("DescribeInvocations")[0].request.query["IncludeOutput"] == "True"
    entry = ecs.invocations[body.invoke_id]["instances"][ids[0]]
    assert entry["status"] == "Success" and entry["finished_at"] is not None


def test_default_behaviour_exit_codes_and_partial_failure(ecs, client):
    ids = linux(ecs, 2)
    ok = settled(
        client,
        run(client, ids[:1], "echo 'hello world'; hostname; cat /etc/os-release").invoke_id,
        include_output=True,
        content_encoding="PlainText",
    )
    out = per_instance(ok)[ids[0]].output
    assert out.startswith("hello world\nbox-001\n") and "Alibaba Cloud Linux" in out
    failed = settled(client, run(client, ids, "sleep 0.2 && exit 3; echo never").invoke_id)
    assert (failed.invocation_status, failed.invoke_status) == ("Failed", "Failed")
    for row in per_instance(failed).values():
        assert (row.invocation_status, row.exit_code, row.error_code) == ("Failed", 3, "ExitCodeNonzero")
    ecs.command_behaviour = lambda inst, text, kind: (0.1, 0 if inst["InstanceId"] == ids[0] else 2, "")
    partial = settled(client, run(client, ids, "check").invoke_id)
    assert (partial.invocation_status, partial.invoke_status) == ("PartialFailed", "PartialFailed")
    assert {i: r.exit_code for i, r in per_instance(partial).items()} == {ids[0]: 0, ids[1]: 2}


def test_a_run_past_its_timeout_ends_timeout(ecs, client):
    ids = linux(ecs)
    inv = settled(client, run(client, ids, "sleep 30", timeout=1).invoke_id)
    row = per_instance(inv)[ids[0]]
    assert (row.invocation_status, row.error_code, row.instance_invoke_status) == (
        "Timeout",
        "ExecutionTimeout",
        "Failed",
    )
    assert row.exit_code is not None and inv.invocation_status == "Failed"
    results = client.describe_invocation_results(
        ecs_models.DescribeInvocationResultsRequest(region_id=REGION, invoke_id=inv.invoke_id)
    ).body.invocation.invocation_results.invocation_result
    assert [(r.invocation_status, r.invoke_record_status) for r in results] == [("Timeout", "Failed")]
    assert results[0].finished_time


def test_stopped_instances_and_agents_not_running_are_aborted(ecs, client):
    good, agent_stopped, agent_missing = linux(ecs, 3)
    (stopped,) = linux(ecs, status="Stopped")
    ecs.agents.update({agent_stopped: "stopped", agent_missing: "not-installed"})
    inv = settled(client, run(client, [good, agent_stopped, agent_missing, stopped], "uptime").invoke_id)
    rows = per_instance(inv)
    assert {i: (r.invocation_status, r.error_code) for i, r in rows.items()} == {
        good: ("Success", ""),
        agent_stopped: ("Aborted", "ClientNotRunning"),
        agent_missing: ("Aborted", "ClientNotRunning"),
        stopped: ("Aborted", "InstanceNotRunning"),
    }
    assert rows[stopped].error_info and rows[stopped].repeats == 0 and rows[good].repeats == 1
    assert inv.invocation_status == "PartialFailed"


def test_scripts_for_the_other_os_are_invalid(ecs, client):
    ecs.command_behaviour = quick
    (box,) = linux(ecs)
    win = ecs.add_instance("win-01", os_type="windows")
    shell = settled(client, run(client, [box, win], "hostname").invoke_id)
    assert per_instance(shell)[win].invocation_status == "Invalid"
    assert per_instance(shell)[win].error_code == "CommandNotApplicable"
    ps = settled(
        client,
        run(client, [box, win], "Get-Date; hostname; exit 4", type="RunPowerShellScript").invoke_id,
        include_output=True,
        content_encoding="PlainText",
    )
    assert per_instance(ps)[box].invocation_status == "Invalid"
    assert (per_instance(ps)[win].invocation_status, per_instance(ps)[win].exit_code) == ("Failed", 4)
    assert "win-01\n" in per_instance(ps)[win].output
    bat = settled(client, run(client, [win], "echo done", type="RunBatScript").invoke_id)
    assert bat.invocation_status == "Success"


def test_output_above_24_kb_is_cut_and_dropped_counts_the_rest(ecs, client):
    ecs.command_behaviour = quick
    ids = linux(ecs, 2)
    inv = settled(client, run(client, ids[:1], "yes | head -c 30000").invoke_id, include_output=True)
    row = per_instance(inv)[ids[0]]
    assert len(base64.b64decode(row.output)) == 24576 and row.dropped == 30000 - 24576
    big = run(client, ids, "./bigoutput.sh").invoke_id
    settled(client, big)
    results = client.describe_invocation_results(
        ecs_models.DescribeInvocationResultsRequest(
            region_id=REGION, invoke_id=big, content_encoding="PlainText"
        )
    ).body.invocation.invocation_results.invocation_result
    assert [len(r.output.encode()) for r in results] == [24576, 24576]
    assert [r.dropped for r in results] == [30000 - 24576] * 2


def test_base64_content_and_output(ecs, client):
    ecs.command_behaviour = quick
    ids = linux(ecs)
    script = base64.b64encode(b"echo caf\xc3\xa9").decode()
    body = run(client, ids, script, content_encoding="base64")
    inv = settled(client, body.invoke_id, include_output=True)
    assert inv.command_content == script
    assert base64.b64decode(per_instance(inv)[ids[0]].output).decode() == "café\n"
    plain = invocation(client, body.invoke_id, include_output=True, content_encoding="plaintext")
    assert plain.command_content == "echo café" and per_instance(plain)[ids[0]].output == "café\n"
    hidden = invocation(client, body.invoke_id)
    assert per_instance(hidden)[ids[0]].output is None
    literal = settled(
        client, run(client, ids, "echo aGk=", content_encoding="Hex").invoke_id, include_output=True
    )
    assert base64.b64decode(per_instance(literal)[ids[0]].output) == b"aGk=\n"
    bad = refused(lambda: run(client, ids, "not base64!", content_encoding="Base64"))
    assert (bad.status_code, bad.code) == (400, "InvalidParameter.CommandContent")
    huge = base64.b64encode(b"echo " + b"x" * 20000).decode()
    too_big = refused(lambda: run(client, ids, huge, content_encoding="Base64"))
    assert (too_big.status_code, too_big.code) == (400, "InvalidParameter.CommandContent")


def test_describe_invocation_results_pages_by_50_with_next_token(ecs, client):
    ecs.command_behaviour = lambda inst, text, kind: (0.0, 0, "ok\n")
    ids = linux(ecs, 120)
    first = run(client, ids[:100], "true").invoke_id
    run(client, ids[100:], "true")
    pages, token = [], None
    while True:
        body = client.describe_invocation_results(
            ecs_models.DescribeInvocationResultsRequest(region_id=REGION, max_results=50, next_token=token)
        ).body.invocation
        pages.append([r.instance_id for r in body.invocation_results.invocation_result])
        token = body.next_token
        if not token:
            break
    assert [len(p) for p in pages] == [50, 50, 20]
    assert sorted(i for p in pages for i in p) == sorted(ids)
    assert pages[0][:20] == ids[100:]  # the newest invocation first
    one = client.describe_invocation_results(
        ecs_models.DescribeInvocationResultsRequest(region_id=REGION, invoke_id=first)
    ).body.invocation
    assert (len(one.invocation_results.invocation_result), one.page_size, one.total_count) == (10, 10, 100)
    assert one.next_token
    above = refused(
        lambda: client.describe_invocation_results(
            ecs_models.DescribeInvocationResultsRequest(region_id=REGION, max_results=51)
        )
    )
    assert (above.status_code, above.code) == (400, "InvalidParameter.MaxResults")
    also = refused(
        lambda: client.describe_invocations(
            ecs_models.DescribeInvocationsRequest(region_id=REGION, max_results=51)
        )
    )
    assert (also.status_code, also.code) == (400, "InvalidParameter.MaxResults")
    listed = client.describe_invocations(
        ecs_models.DescribeInvocationsRequest(region_id=REGION, max_results=1)
    ).body
    assert len(listed.invocations.invocation) == 1 and listed.next_token
    assert len(listed.invocations.invocation[0].invoke_instances.invoke_instance) == 20


def test_a_repeated_client_token_returns_the_same_ids_and_starts_nothing(ecs, client):
    ids = linux(ecs, 2)
    first = run(client, ids, "sleep 0.3", client_token="job-42-step-1")
    again = run(client, ids, "sleep 0.3", client_token="job-42-step-1")
    assert (again.invoke_id, again.command_id) == (first.invoke_id, first.command_id)
    assert list(ecs.invocations) == [first.invoke_id]
    other = run(client, ids, "sleep 0.3", client_token="job-42-step-2")
    assert other.invoke_id != first.invoke_id and len(ecs.invocations) == 2
    long = refused(lambda: run(client, ids, "true", client_token="x" * 65))
    assert (long.status_code, long.code) == (400, "InvalidParameter.ClientToken")
    assert len(ecs.invocations) == 2


def test_stop_invocation_terminates_running_and_cancels_pending(ecs, client, monkeypatch):
    monkeypatch.setattr(cloud_assistant_wire, "STOPPING_SECONDS", 1.0)
    ids = linux(ecs, 2)
    body = run(client, ids, "sleep 60", timeout=120)
    wait_for(lambda: invocation(client, body.invoke_id).invocation_status == "Running", message="Running")
    client.stop_invocation(ecs_models.StopInvocationRequest(region_id=REGION, invoke_id=body.invoke_id))
    stopping = invocation(client, body.invoke_id)
    assert {r.invocation_status for r in per_instance(stopping).values()} <= {"Stopping", "Terminated"}
    phases = [s for _, s in ecs.invocations[body.invoke_id]["instances"][ids[0]]["phases"]]
    assert phases == ["Pending", "Running", "Stopping", "Terminated"]
    inv = settled(client, body.invoke_id)
    assert (inv.invocation_status, inv.invoke_status) == ("Stopped", "Stopped")
    for row in per_instance(inv).values():
        assert (row.invocation_status, row.instance_invoke_status) == ("Terminated", "Stopped")
        assert row.stop_time and row.exit_code is not None
    monkeypatch.setattr(cloud_assistant_wire, "PENDING_SECONDS", 60.0)
    waiting = run(client, ids, "uptime")
    client.stop_invocation(
        ecs_models.StopInvocationRequest(region_id=REGION, invoke_id=waiting.invoke_id, instance_id=ids[:1])
    )
    rows = per_instance(invocation(client, waiting.invoke_id))
    assert (rows[ids[0]].invocation_status, rows[ids[1]].invocation_status) == ("Cancelled", "Pending")
    missing = refused(
        lambda: client.stop_invocation(ecs_models.StopInvocationRequest(region_id=REGION, invoke_id="t-nope"))
    )
    assert (missing.status_code, missing.code) == (404, "InvalidInvokeId.NotFound")


def test_stopping_a_finished_invocation_changes_nothing(ecs, client):
    ecs.command_behaviour = quick
    ids = linux(ecs)
    body = run(client, ids, "exit 1")
    before = settled(client, body.invoke_id)
    client.stop_invocation(ecs_models.StopInvocationRequest(region_id=REGION, invoke_id=body.invoke_id))
    after = invocation(client, body.invoke_id)
    assert (before.invocation_status, after.invocation_status) == ("Failed", "Failed")
    assert per_instance(after)[ids[0]].exit_code == 1


def test_cloud_assistant_status_reports_agents(ecs, client):
    ecs.command_behaviour = quick
    good, stopped_agent, missing = linux(ecs, 3)
    (powered_off,) = linux(ecs, status="Stopped")
    win = ecs.add_instance("win-01", os_type="windows")
    ecs.agents.update({stopped_agent: "stopped", missing: "not-installed"})
    settled(client, run(client, [good, missing], "true").invoke_id)
    ids = [good, stopped_agent, missing, powered_off, win]
    body = client.describe_cloud_assistant_status(
        ecs_models.DescribeCloudAssistantStatusRequest(region_id=REGION, instance_id=ids)
    ).body
    rows = {
        r.instance_id: r for r in body.instance_cloud_assistant_status_set.instance_cloud_assistant_status
    }
    assert [
        r.instance_id for r in body.instance_cloud_assistant_status_set.instance_cloud_assistant_status
    ] == ids
    assert {i: rows[i].cloud_assistant_status for i in ids} == {
        good: "true",
        stopped_agent: "false",
        missing: "false",
        powered_off: "false",
        win: "true",
    }
    assert rows[missing].cloud_assistant_version == "" and rows[good].cloud_assistant_version
    assert (rows[good].ostype, rows[win].ostype) == ("Linux", "Windows")
    assert (rows[good].invocation_count, rows[missing].invocation_count, rows[good].active_task_count) == (
        1,
        0,
        0,
    )
    assert rows[good].last_heartbeat_time and not rows[stopped_agent].last_heartbeat_time
    paged = client.describe_cloud_assistant_status(
        ecs_models.DescribeCloudAssistantStatusRequest(region_id=REGION, max_results=2)
    ).body
    assert (
        len(paged.instance_cloud_assistant_status_set.instance_cloud_assistant_status) == 2
        and paged.next_token
    )
    too_many = refused(
        lambda: client.describe_cloud_assistant_status(
            ecs_models.DescribeCloudAssistantStatusRequest(region_id=REGION, instance_id=linux(ecs, 51))
        )
    )
    assert (too_many.status_code, too_many.code) == (400, "InvalidParameter.InstanceId")


def test_run_command_validates_like_the_api(ecs, client):
    ids = linux(ecs)
    cases = [
        (lambda: run(client, ids, "true", type="RunPythonScript"), 400, "InvalidParameter.Type"),
        (lambda: run(client, ids, ""), 400, "MissingCommandContent"),
        (lambda: run(client, [], "true"), 400, "MissingParameter.InstanceId"),
        (lambda: run(client, linux(ecs, 101), "true"), 400, "InvalidParameter.InstanceId"),
        (lambda: run(client, [*ids, "i-bp1doesnotexist000"], "true"), 404, "InvalidInstance.NotFound"),
        (lambda: run(client, ids, "true", timeout=0), 400, "InvalidParameter.Timeout"),
    ]
    for call, status, code in cases:
        exc = refused(call)
        assert (exc.status_code, exc.code) == (status, code)
        assert exc.request_id and exc.data.get("HostId")
    assert ecs.invocations == {}
    ecs.latency = 0.01
    run(client, ids, "true")
    assert len(ecs.calls_named("RunCommand")) == len(cases) + 1 and len(ecs.invocations) == 1


def test_the_sandbox_fleet_has_dev_machines_without_a_running_agent():
    emu = build_sandbox_ecs(None)
    names = {emu.instances[i]["InstanceName"]: state for i, state in emu.agents.items()}
    assert names == AGENT_STATES
    assert sorted(names.values()) == ["not-installed", "stopped", "stopped"]
    assert (
        all(name.startswith("dev-") for name in names) and len(emu.instances) == 66
    )  # 63 + 3 batch machines
    assert all(emu.instances[i]["Status"] == "Running" for i in emu.agents)
