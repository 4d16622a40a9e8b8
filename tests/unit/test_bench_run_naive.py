"""The seed's Cloud Assistant runner (`bench/baselines/run_naive.py`) against the ECS emulator: batches
of 100, waits of 2, 4, 8 … seconds between polls, and what it reports."""

from __future__ import annotations

import pytest

from bench.baselines.run_naive import NaiveRunner
from sandbox import credentials
from sandbox.ecs_emulator import EcsEmulator
from tests.support import wait_for


@pytest.fixture
def ecs():
    emu = EcsEmulator().start()
    yield emu
    emu.stop()


def runner(emu: EcsEmulator, sleep=None) -> NaiveRunner:
    args = (emu.base_url, credentials.ALIBABA_ACCESS_KEY_ID, credentials.ALIBABA_ACCESS_KEY_SECRET)
    naive = NaiveRunner(*args, credentials.REGION_ID)
    naive.sleep = sleep or naive.sleep
    return naive


def all_settled(emu: EcsEmulator) -> bool:
    return all(
        e["finished_at"] is not None for r in emu.invocations.values() for e in r["instances"].values()
    )


def test_a_half_second_command_is_seen_finished_at_the_first_poll_after_2_s(ecs):
    ids = ecs.seed_fleet(3, status="Running", envs=("dev",))
    naive = runner(ecs)
    report = naive.run(ids, "sleep 0.5; echo hi")
    assert naive.waits == [2.0]
    assert report["api_calls"] == 2 and naive.api_calls == 2
    assert report["instances"] == {
        i: {"status": "Success", "exit_code": 0, "output": "hi\n", "error_code": ""} for i in ids
    }
    (sent,) = [c.request.query for c in ecs.calls_named("RunCommand")]
    assert sent["ContentEncoding"] == "PlainText" and sent["CommandContent"] == "sleep 0.5; echo hi"
    (poll,) = [c.request.query for c in ecs.calls_named("DescribeInvocations")]
    assert poll["InvokeId"] == report["invoke_ids"][0] and poll["IncludeOutput"] == "True"
    finished = [e["finished_at"] for e in ecs.invocations[report["invoke_ids"][0]]["instances"].values()]
    assert all(f is not None for f in finished) and isinstance(report["finished_at"], float)


def test_the_waits_double_until_the_invocation_is_over(ecs):
    ids = ecs.seed_fleet(2, status="Running", envs=("dev",))
    ecs.command_behaviour = lambda inst, text, kind: (600.0, 0, "")

    def sleep(seconds):  # no real waiting; during the third wait the run is stopped and ends
        if len(naive.waits) == 2:
            (invoke_id,) = ecs.invocations
            query = {"RegionId": credentials.REGION_ID, "InvokeId": invoke_id}
            wait_for(
                lambda: (
                    ecs.api_DescribeInvocations(query)["Invocations"]["Invocation"][0]["InvocationStatus"]
                    == "Running"
                ),
                message="the run to start",
            )
            ecs.api_StopInvocation(query)
            wait_for(lambda: all_settled(ecs), message="the stop to settle")

    naive = runner(ecs, sleep)
    report = naive.run(ids, "long-job", timeout=3600)
    assert naive.waits == [2.0, 4.0, 8.0]
    assert report["api_calls"] == 1 + 3 == len(ecs.calls)
    assert {r["status"] for r in report["instances"].values()} == {"Terminated"}


def test_it_sends_batches_of_100_and_reports_each_instance(ecs):
    ids = ecs.seed_fleet(150, status="Running", envs=("dev",))
    ecs.agents[ids[120]] = "stopped"
    ecs.command_behaviour = lambda inst, text, kind: (0.0, 0 if inst["OSType"] == "linux" else 1, "")
    naive = runner(ecs, lambda seconds: wait_for(lambda: all_settled(ecs), message="the runs to end"))
    report = naive.run(ids, "rpm -q nginx")
    sizes = [sum(k.startswith("InstanceId.") for k in c.request.query) for c in ecs.calls_named("RunCommand")]
    assert sizes == [100, 50]
    assert naive.waits == [2.0, 2.0] and report["api_calls"] == 4
    assert len(report["instances"]) == 150 and len(report["invoke_ids"]) == 2
    windows = {i for i in ids if ecs.instances[i]["OSType"] == "windows"}
    assert {i for i, r in report["instances"].items() if r["status"] == "Invalid"} == windows
    assert report["instances"][ids[120]]["status"] == "Aborted"
    assert report["instances"][ids[120]]["error_code"] == "ClientNotRunning"
    assert all(
        r["status"] == "Success" for i, r in report["instances"].items() if i not in windows | {ids[120]}
    )


def test_a_failed_run_command_is_not_retried(ecs):
    ids = ecs.seed_fleet(2, status="Running", envs=("dev",))
    ecs.inject("RunCommand", "ServiceUnavailable", status=503)
    naive = runner(ecs, lambda seconds: None)
    report = naive.run(ids, "uptime")
    assert report["api_calls"] == 1 and naive.waits == [] and report["invoke_ids"] == []
    assert {r["status"] for r in report["instances"].values()} == {"Error"}
    assert naive.errors == ["RunCommand: ServiceUnavailable"]
