"""The ECS adapter (real alibabacloud_ecs20140526 SDK) against the ECS emulator over loopback: paging,
batching at 100, throttling and 5xx retries, partial failures, already-in-state instances, dry runs,
waiting, and the wire format the emulator holds the SDK to."""

from __future__ import annotations

import json
import time

import pytest
from alibabacloud_ecs20140526 import models as ecs_models

from bot.adapters.ecs import EcsAdapter
from bot.adapters.ecs_support import RetryPolicy, make_client
from bot.config import load_settings
from bot.ecs_model import ACCEPTED, ALREADY_THERE, DONE, DRY_RUN_OK, FAILED, InstanceResult
from bot.errors import UpstreamError
from bot.metrics import Metrics
from handlers.ecs.plan import build_plan
from handlers.ecs.power_job import execute_plan
from handlers.ecs.selectors import PowerOptions, parse_selector
from sandbox import credentials
from sandbox.ecs_emulator import EcsEmulator
from tests.support import wait_for

FAST_RETRY = RetryPolicy(attempts=4, base_seconds=0.01, cap_seconds=0.05)


@pytest.fixture
def ecs():
    emu = EcsEmulator().start()
    emu.transition_seconds = 0.2
    yield emu
    emu.stop()


def settings_for(emu: EcsEmulator, secret: str = credentials.ALIBABA_ACCESS_KEY_SECRET):
    return load_settings(
        {
            "ECS_ENDPOINT": emu.base_url,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": credentials.ALIBABA_ACCESS_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
            "ALIBABA_CLOUD_REGION_ID": credentials.REGION_ID,
        }
    )


def adapter_for(emu: EcsEmulator, secret: str = credentials.ALIBABA_ACCESS_KEY_SECRET, **kw) -> EcsAdapter:
    options = {"retry": FAST_RETRY, "poll_initial": 0.05, "rate_per_second": 500.0, "metrics": Metrics()}
    options.update(kw)
    return EcsAdapter(make_client(settings_for(emu, secret)), credentials.REGION_ID, **options)


def queries(emu: EcsEmulator, action: str) -> list[dict[str, str]]:
    return [c.request.query for c in emu.calls_named(action)]


def sent_ids(query: dict[str, str]) -> list[str]:
    return [v for k, v in query.items() if k.startswith("InstanceId.")]


def test_listing_pages_with_max_results_100_and_next_token(ecs):
    ids = ecs.seed_fleet(250, extra_tags={"svc": "checkout"})
    found = adapter_for(ecs).describe_instances(tags={"svc": "checkout"})
    assert sorted(i.instance_id for i in found) == sorted(ids)
    pages = queries(ecs, "DescribeInstances")
    assert [q["MaxResults"] for q in pages] == ["100", "100", "100"]
    assert "NextToken" not in pages[0] and pages[1]["NextToken"] and pages[2]["NextToken"]
    assert pages[0]["Tag.1.Key"] == "svc" and pages[0]["Tag.1.Value"] == "checkout"
    first = next(i for i in found if i.instance_id == ids[0])
    assert (
        first.tags["env"] == "dev"
        and first.private_ip
        and first.instance_type
        and first.region == "cn-hangzhou"
    )


def test_the_emulator_keeps_the_10_item_default_that_bit_the_originals(ecs):
    ecs.seed_fleet(25)
    client = make_client(settings_for(ecs))
    body = client.describe_instances(
        ecs_models.DescribeInstancesRequest(region_id=credentials.REGION_ID)
    ).body
    assert len(body.instances.instance) == 10 and body.total_count == 25


def test_ids_are_described_100_per_call_and_name_globs_and_status_filter(ecs):
    ids = ecs.seed_fleet(230)
    adapter = adapter_for(ecs)
    found = adapter.describe_instances(instance_ids=ids)
    assert len(found) == 230
    chunks = [json.loads(q["InstanceIds"]) for q in queries(ecs, "DescribeInstances")]
    assert sorted(len(c) for c in chunks) == [30, 100, 100]
    assert all(q["MaxResults"] == "100" for q in queries(ecs, "DescribeInstances"))
    web = adapter.describe_instances(name="dev-web-*", status="running")
    assert web and all(i.name.startswith("dev-web-") and i.status == "Running" for i in web)
    odd = adapter.describe_instances(name="dev-web-0?")
    assert [i.name for i in odd] == ["dev-web-01"]


def test_beyond_the_tag_filter_cap_the_ids_come_from_list_tag_resources(ecs):
    ids = ecs.seed_fleet(1030, extra_tags={"fleet": "big"})
    ecs.seed_fleet(40)
    found = adapter_for(ecs).describe_instances(tags={"fleet": "big"})
    assert sorted(i.instance_id for i in found) == sorted(ids)
    assert len(ecs.calls_named("ListTagResources")) == 21  # 1,030 tag entries, 50 per page
    assert any("InstanceIds" in q for q in queries(ecs, "DescribeInstances"))


def test_power_sends_batches_of_at_most_100_with_success_first(ecs):
    ids = ecs.seed_fleet(230, status="Running")
    adapter = adapter_for(ecs)
    results = adapter.power("stop", ids, stopped_mode="stop-charging", force=True)
    assert [r.instance_id for r in results] == ids
    assert {r.outcome for r in results} == {ACCEPTED}
    assert {(r.previous_status, r.current_status) for r in results} == {("Running", "Stopping")}
    batches = queries(ecs, "StopInstances")
    assert sorted(len(sent_ids(q)) for q in batches) == [30, 100, 100]
    assert {q["BatchOptimization"] for q in batches} == {"SuccessFirst"}
    assert {q["StoppedMode"] for q in batches} == {"StopCharging"}
    assert {q["ForceStop"].lower() for q in batches} == {"true"}
    assert adapter.api_calls == len(ecs.calls) == 6  # 3 refreshes + 3 batches


def test_instances_already_in_the_target_state_are_skipped(ecs):
    running = ecs.seed_fleet(5, status="Running")
    stopped = ecs.seed_fleet(3, status="Stopped")
    ecs.set_status(running[0], "Starting")
    results = {r.instance_id: r for r in adapter_for(ecs).power("stop", running + stopped)}
    assert {i for i, r in results.items() if r.outcome == ALREADY_THERE} == set(stopped)
    busy = results[running[0]]
    assert (busy.outcome, busy.code) == (FAILED, "IncorrectInstanceStatus") and "Starting" in busy.message
    assert sorted(sent_ids(queries(ecs, "StopInstances")[0])) == sorted(running[1:])


def test_partial_failures_come_back_per_instance(ecs):
    ids = ecs.seed_fleet(6, status="Stopped")
    ecs.no_stock.update(ids[:2])
    results = adapter_for(ecs).power("start", ids + ["i-bp1doesnotexist00"])
    by_id = {r.instance_id: r for r in results}
    assert {by_id[i].code for i in ids[:2]} == {"OperationDenied.NoStock"}
    assert {by_id[i].outcome for i in ids[2:]} == {ACCEPTED}
    missing = by_id["i-bp1doesnotexist00"]
    assert (missing.outcome, missing.code) == (FAILED, "InvalidInstanceId.NotFound")


def test_throttling_and_5xx_are_retried_with_backoff(ecs):
    ids = ecs.seed_fleet(3, status="Running")
    ecs.inject("StopInstances", "Throttling.User", status=400, times=2)
    ecs.inject("DescribeInstances", "ServiceUnavailable", status=503, times=1)
    adapter = adapter_for(ecs)
    results = adapter.power("stop", ids)
    assert {r.outcome for r in results} == {ACCEPTED}
    assert [c.status for c in ecs.calls_named("StopInstances")] == [400, 400, 200]
    assert [c.status for c in ecs.calls_named("DescribeInstances")] == [503, 200]
    assert adapter.calls["StopInstances"] == 3
    retries = adapter.metrics.retries.labels("ecs", "StopInstances")._value.get()
    assert retries == 2


def test_the_emulators_qps_throttle_is_absorbed_by_retries(ecs):
    ids = ecs.seed_fleet(5)
    # one call a second: the second call, made right after the first, is throttled however slow the
    # machine (a higher limit is only reached when calls are fast enough); the retries (full jitter,
    # so some are short) must be able to outlast the one-second window, whatever the draw
    ecs.throttle_qps = 1
    ecs.throttle_retry_after_ms = 20
    adapter = adapter_for(ecs, retry=RetryPolicy(attempts=40, base_seconds=0.05, cap_seconds=0.2))
    for _ in range(3):
        assert len(adapter.describe_instances(instance_ids=ids)) == 5
    assert any(c.status == 400 and c.response["Code"] == "Throttling.User" for c in ecs.calls)


def test_persistent_5xx_surfaces_as_an_upstream_error_with_the_request_id(ecs):
    ecs.inject("DescribeInstances", "InternalError", status=500, times=10)
    with pytest.raises(UpstreamError) as caught:
        adapter_for(ecs).describe_instances(tags={"env": "dev"})
    assert caught.value.code == "InternalError" and caught.value.request_id
    assert caught.value.retryable  # a 5xx may succeed later
    assert len(ecs.calls) == FAST_RETRY.attempts


def test_a_batch_level_refusal_fails_that_batch_only(ecs):
    ids = ecs.seed_fleet(150, status="Running")
    ecs.inject("StopInstances", "Forbidden.RAM", status=403, message="User not authorized.")
    results = adapter_for(ecs, concurrency=1).power("stop", ids)
    failed = [r for r in results if r.outcome == FAILED]
    assert len(failed) in (50, 100) and {r.code for r in failed} == {"Forbidden.RAM"}
    assert len([r for r in results if r.outcome == ACCEPTED]) == 150 - len(failed)


def test_a_wrong_secret_is_refused_and_not_retried(ecs):
    ecs.seed_fleet(2)
    with pytest.raises(UpstreamError) as caught:
        adapter_for(ecs, secret="not-the-secret").describe_instances()
    assert caught.value.code == "SignatureDoesNotMatch"
    assert not caught.value.retryable
    assert len(ecs.calls) == 1


def test_dry_run_gives_ecs_verdict_with_all_together(ecs):
    running = ecs.seed_fleet(3, status="Running")
    stopped = ecs.seed_fleet(1, status="Stopped")
    adapter = adapter_for(ecs)
    ok = adapter.power("stop", running, dry_run=True, skip_in_target=False)
    assert {r.outcome for r in ok} == {DRY_RUN_OK}
    bad = adapter.power("stop", running + stopped, dry_run=True, skip_in_target=False)
    assert {(r.outcome, r.code) for r in bad} == {(FAILED, "IncorrectInstanceStatus")}
    assert {q["BatchOptimization"] for q in queries(ecs, "StopInstances")} == {"AllTogether"}
    assert set(ecs.statuses(running).values()) == {"Running"}


@pytest.mark.parametrize("positive_check_max", [300, 2])
def test_waiting_reaches_the_target_state_by_id_or_by_probe(ecs, positive_check_max):
    ids = ecs.seed_fleet(6, extra_tags={"team": "pay"}, status="Running")
    ecs.seed_fleet(3, extra_tags={"team": "pay"}, status="Running")  # same tag, not ours: stays Running
    adapter = adapter_for(ecs, positive_check_max=positive_check_max)
    adapter.power("stop", ids)
    seen = []
    statuses = adapter.wait_for_state(
        ids, "Stopped", tags={"team": "pay"}, timeout=10, on_progress=lambda r, n: seen.append((r, n))
    )
    assert statuses == dict.fromkeys(ids, "Stopped")
    assert set(ecs.statuses(ids).values()) == {"Stopped"}
    assert seen[-1] == (6, 6)
    if positive_check_max == 2:  # probes carry Status filters, not id lists
        probes = [q for q in queries(ecs, "DescribeInstances") if "Status" in q]
        assert probes and all("InstanceIds" not in q for q in probes)


def test_a_probe_finds_an_instance_that_ended_elsewhere(ecs):
    ids = ecs.seed_fleet(4, extra_tags={"team": "pay"}, status="Running")
    adapter = adapter_for(ecs, positive_check_max=1)
    adapter.power("stop", ids)
    ecs.set_status(ids[0], "Running")  # someone started it again
    statuses = adapter.wait_for_state(ids, "Stopped", tags={"team": "pay"}, timeout=10)
    assert statuses[ids[0]] == "Running" and {statuses[i] for i in ids[1:]} == {"Stopped"}


def test_a_wait_looks_first_when_the_last_wait_of_its_kind_settled(ecs):
    ids = ecs.seed_fleet(3, status="Stopped")
    ecs.transition_seconds = 0.6
    adapter = adapter_for(ecs)

    def reads_to_start() -> int:
        before = len(ecs.calls_named("DescribeInstances"))
        adapter.power("start", ids, skip_in_target=False)
        assert adapter.wait_for_state(ids, "Running", timeout=20) == dict.fromkeys(ids, "Running")
        return len(ecs.calls_named("DescribeInstances")) - before

    first = reads_to_start()  # unknown: looks from poll_initial (0.05 s) on, backing off
    # learnt: about the 0.6 s transition (it began as StartInstances was answered, just before the wait)
    assert adapter.settle_times.first_look((credentials.REGION_ID, "Running")) >= 0.5
    adapter.power("stop", ids, skip_in_target=False)
    adapter.wait_for_state(ids, "Stopped", timeout=20)
    second = reads_to_start()  # learnt: the first look comes when the last start had settled
    assert first >= 5 and second <= 2


def test_counting_instances_is_one_call_whatever_the_number(ecs):
    ecs.seed_fleet(230, extra_tags={"Schedule": "office"}, status="Running")
    ecs.seed_fleet(20, extra_tags={"Schedule": "office"}, status="Stopped")
    adapter = adapter_for(ecs)
    assert adapter.count_instances(tags={"Schedule": "office"}, status="running") == 230
    assert adapter.count_instances(tags={"Schedule": "office"}) == 250
    counted = queries(ecs, "DescribeInstances")
    assert len(counted) == 2 and {q["PageSize"] for q in counted} == {"1"}
    assert all("MaxResults" not in q for q in counted)  # TotalCount is meaningless with MaxResults


def test_waiting_gives_up_at_the_deadline(ecs):
    ids = ecs.seed_fleet(2, status="Running")
    ecs.transition_seconds = 30
    adapter = adapter_for(ecs)
    adapter.power("stop", ids)
    assert adapter.wait_for_state(ids, "Stopped", timeout=0.3) == dict.fromkeys(ids, "Stopping")


def plan_for(emu: EcsEmulator, action: str, selector_text: str):
    adapter = adapter_for(emu)
    selector = parse_selector(selector_text)
    found = adapter.describe_instances(tags=selector.tag_filter() or None, instance_ids=selector.ids or None)
    plan = build_plan(
        action,
        selector,
        PowerOptions(),
        found,
        plan_id="p1",
        region=credentials.REGION_ID,
        requester="U1",
        channel="C1",
        now=0,
        ttl_seconds=600,
    )
    return adapter, plan


def test_execute_plan_settles_every_instance(ecs):
    ids = ecs.seed_fleet(8, extra_tags={"grp": "a"}, status="Stopped")
    ecs.set_status(ids[0], "Running")
    ecs.no_stock.add(ids[1])
    adapter, plan = plan_for(ecs, "start", "tag:grp=a")
    final = {r.instance_id: r for r in execute_plan(adapter, plan, wait_timeout=10)}
    assert final[ids[0]].outcome == ALREADY_THERE
    assert (final[ids[1]].outcome, final[ids[1]].code) == (FAILED, "OperationDenied.NoStock")
    assert {final[i].outcome for i in ids[2:]} == {DONE}


def test_a_resumed_reboot_is_not_sent_twice(ecs):
    ids = ecs.seed_fleet(3, extra_tags={"grp": "r"}, status="Running")
    adapter, plan = plan_for(ecs, "reboot", "tag:grp=r")
    previous = {ids[0]: InstanceResult(ids[0], ACCEPTED, "200", "success", "Running", "Stopping")}
    ecs.reset_calls()
    final = {
        r.instance_id: r for r in execute_plan(adapter, plan, previous=previous, resume=True, wait_timeout=5)
    }
    assert not ecs.calls_named("RebootInstances")
    assert final[ids[0]].outcome == DONE
    assert {(final[i].outcome, final[i].code) for i in ids[1:]} == {(FAILED, "Interrupted")}


def test_a_resumed_reboot_reports_what_ecs_shows_was_rebooted(ecs):
    ids = ecs.seed_fleet(3, extra_tags={"grp": "rb"}, status="Running")
    ecs.transition_seconds = 0.1
    adapter, plan = plan_for(ecs, "reboot", "tag:grp=rb")
    sent_at = time.time() - 1
    adapter.power("reboot", [ids[1]], region=plan.region)  # sent by the attempt that died, not recorded
    wait_for(
        lambda: (
            ecs.statuses([ids[1]])[ids[1]] == "Running"
            and ecs.instances[ids[1]]["StartTime"] != "2026-01-15T08:01Z"
        ),
        10,
    )
    previous = {ids[0]: InstanceResult(ids[0], ACCEPTED, "200", "success", "Running", "Stopping")}
    ecs.reset_calls()
    final = {
        r.instance_id: r
        for r in execute_plan(adapter, plan, previous=previous, resume=True, wait_timeout=5, sent_at=sent_at)
    }
    assert not ecs.calls_named("RebootInstances")
    assert final[ids[1]].outcome == DONE  # it started again after the reboot was sent
    assert (final[ids[2]].outcome, final[ids[2]].code) == (FAILED, "Interrupted")
