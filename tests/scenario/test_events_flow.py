"""ECS events end to end: ECS emulator → MNS emulator → the bot's worker (real Redis) → Slack / ECS / SLB
emulators, through the real SDKs on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.adapters.mns import MnsQueueClient
from bot.intents import record_intents
from handlers.events import keys
from sandbox import credentials
from sandbox.mns_events import encode_body, interruption_event, state_change_event
from sandbox.slack_emulator import max_rate_per_second
from sandbox.slb_emulator import SANDBOX_GROUP
from tests.support import run_sandbox_script, slash, wait_for

SANDBOX_POLICY = Path(__file__).resolve().parents[2] / "sandbox" / "data" / "policy.yaml"
EMULATORS = ["slack", "mns", "ecs", "slb"]


def write_policy(tmp_path, **sections) -> str:
    policy = yaml.safe_load(SANDBOX_POLICY.read_text())
    policy.pop("schedules", None)  # the office machines' schedules would add events by the time of day
    events = {
        "wait_seconds": 1,
        "claim_seconds": 5,
        "digest_quiet_seconds": 1.0,
        "channel_rate_per_second": 1.0,
    }
    events.update(sections.pop("events", {}))
    policy["events"] = events
    policy.update(sections)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return str(path)


@pytest.fixture
def events_bot(make_bot, redis_url, tmp_path):
    def start(worker=True, **sections):
        bot = make_bot(
            redis_url=redis_url,
            emulators=EMULATORS,
            env={"CHATOPS_CONFIG": write_policy(tmp_path, **sections)},
            worker=worker,
        )
        bot.emulator("ecs").transition_seconds = 0.3
        return bot

    return start


def by_name(ecs, name: str) -> str:
    return next(iid for iid, inst in ecs.instances.items() if inst["InstanceName"] == name)


def texts(slack, channel: str) -> list[str]:
    return [m.text for m in slack.channel_messages(channel)]


def seen(slack, channel: str, *words: str) -> list[str]:
    return [t for t in texts(slack, channel) if all(w in t for w in words)]


def test_done_when_in_the_sandbox_stop_by_command_interruption_and_history(tmp_path):
    """The acceptance walk-through, as a sandbox script (embedded SQLite store)."""
    script = "\n".join(
        [
            "/ecs stop name:prod-web-03",
            "click 1",
            'expect "Approval needed" 10',  # prod: the sandbox's two-person rule
            "as bob",
            "click 1",
            "as alice",
            'expect "Stopping → *Stopped*" 40',
            'expect "Auto-restart skipped: stopped on purpose by @alice" 10',
            "inject interruption prod-web-39",
            'expect "removed from SLB vserver group `rsp-sandbox-web` (port 80)" 30',
            "/ecs history prod-web-03",
            'expect "Stopping → Stopped" 5',
            'expect "(stop by @alice)" 5',
        ]
    )
    proc = run_sandbox_script(tmp_path, script, timeout=150)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 failed step(s)" in proc.stdout
    assert "Auto-restart: starting" not in proc.stdout


def test_an_event_for_an_archived_channel_goes_to_the_default_channel_saying_so(events_bot):
    bot = events_bot()
    ecs, slack = bot.emulator("ecs"), bot.emulator("slack")
    slack.archived_channels.add("C_DEV")  # the dev route's channel
    iid = next(i for i, inst in ecs.instances.items() if inst.get("Tags", {}).get("env") == "dev")
    ecs.set_status(iid, "Stopped")
    wait_for(
        lambda: seen(slack, "C_OPS", iid, "meant for <#C_DEV>, which answered `is_archived`"),
        30,
        message="the event in the default channel",
    )
    assert not slack.channel_messages("C_DEV")


def test_unexpected_stop_restarts_at_most_n_times_per_hour(events_bot):
    bot = events_bot(auto_restart={"tags": {"env": "prod", "app": "web"}, "max_per_hour": 2})
    ecs, slack = bot.emulator("ecs"), bot.emulator("slack")
    iid = by_name(ecs, "prod-web-21")
    for n in (1, 2):
        ecs.set_status(iid, "Stopped")
        wait_for(
            lambda n=n: seen(slack, "C_OPS", iid, f"auto-restart: started (restart {n} of"),
            30,
            message=f"restart {n}",
        )
        wait_for(lambda: ecs.status_of(iid) == "Running", 20, message="running again")
    ecs.set_status(iid, "Stopped")
    wait_for(
        lambda: seen(slack, "C_OPS", iid, "auto-restart skipped: already restarted 2×"), 30, message="cap"
    )
    assert ecs.status_of(iid) == "Stopped"
    assert len(bot.services.store.zrange_by_score(keys.restarts(iid), 0, float("inf"))) == 2


def test_schedule_stops_and_maintenance_are_never_restarted(events_bot):
    bot = events_bot()
    ecs, slack, mns = bot.emulator("ecs"), bot.emulator("slack"), bot.emulator("mns")
    scheduled, maintained = by_name(ecs, "prod-web-21"), by_name(ecs, "prod-web-03")
    record_intents(
        bot.services.store, [scheduled], "stop", "schedule", "office-hours", at=bot.services.clock.time()
    )
    ecs.set_status(scheduled, "Stopped")
    mns.inject_system_event(maintained, not_before=1.9e9)
    wait_for(
        lambda: seen(slack, "C_ALERTS", maintained, "SystemMaintenance.Reboot"), 30, message="system event"
    )
    (notice,) = seen(slack, "C_ALERTS", maintained, "SystemMaintenance.Reboot")
    assert "Scheduled, not before 2030-03-17" in notice
    ecs.set_status(maintained, "Stopped")
    wait_for(lambda: seen(slack, "C_OPS", scheduled, "stopped on purpose by the schedule office-hours"), 30)
    wait_for(
        lambda: seen(slack, "C_OPS", maintained, "expected stop: SystemMaintenance.Reboot (Scheduled)"), 30
    )
    assert ecs.status_of(scheduled) == "Stopped" and ecs.status_of(maintained) == "Stopped"
    assert not [t for t in texts(slack, "C_OPS") if "auto-restart: started" in t]


def test_interruption_takes_the_instance_out_of_its_vserver_group(events_bot):
    bot = events_bot()
    ecs, slack, mns, slb = (bot.emulator(n) for n in ("ecs", "slack", "mns", "slb"))
    spot = by_name(ecs, "prod-web-39")
    other = slb.server_ids(SANDBOX_GROUP)
    assert spot in other and len(other) >= 2
    mns.inject_interruption(spot)
    wait_for(lambda: spot not in slb.server_ids(SANDBOX_GROUP), 20, message="SLB removal")
    assert set(slb.server_ids(SANDBOX_GROUP)) == set(other) - {spot}
    wait_for(lambda: seen(slack, "C_ALERTS", spot, "is being reclaimed: removed from SLB vserver group"), 20)
    mns.inject_interruption(by_name(ecs, "dev-web-01"))  # not selected by any group of the policy
    wait_for(
        lambda: seen(slack, "C_ALERTS", "dev-web-01", "no SLB vserver group of the policy selects it"), 20
    )
    assert len(slb.calls_named("RemoveVServerGroupBackendServers")) == 1


def test_poison_and_overdelivered_messages_are_quarantined_not_looped(events_bot):
    bot = events_bot(worker=False, events={"quarantine_after_deliveries": 2})
    mns, slack = bot.emulator("mns"), bot.emulator("slack")
    mns.send("this is not an ECS event")
    mns.send('{"name": 42}')
    mns.send(encode_body(state_change_event({"InstanceId": "i-tired"}, "Running"), "raw"))
    client = MnsQueueClient(
        mns.base_url,
        credentials.MNS_QUEUE,
        credentials.ALIBABA_ACCESS_KEY_ID,
        credentials.ALIBABA_ACCESS_KEY_SECRET,
    )
    for _ in range(2):  # two earlier deliveries that were never handled
        for m in client.receive(16, 0):
            client.change_visibility(m.receipt_handle, 0)
    from bot.worker import Worker

    worker = Worker(bot.services, workers=1)
    worker.start()
    try:
        wait_for(lambda: mns.depth() == 0, 20, message="every message deleted")
        wait_for(lambda: len(seen(slack, "C_OPS", "Quarantined MNS message")) == 3, 20, message="3 reports")
    finally:
        worker.stop(timeout=10)
    records = [json.loads(r) for r in bot.services.store.list_range(keys.QUARANTINE)]
    reasons = sorted(r["reason"] for r in records)
    assert reasons == [
        "body is neither JSON nor Base64 of JSON",
        "delivered 3 times without being handled",
        "no event name",
    ]
    assert any(r["body"] == "this is not an ECS event" for r in records)
    assert not seen(slack, "C_OPS", "i-tired → Running")


def test_unreadable_bodies_are_quarantined_and_the_rest_of_their_batch_delivered(events_bot):
    bot = events_bot()
    mns, slack = bot.emulator("mns"), bot.emulator("slack")
    mns.send(
        encode_body(
            state_change_event({"InstanceId": "i-before", "InstanceName": "before"}, "Stopping"), "raw"
        )
    )
    mns.send("\x01\x02 not even XML")
    mns.send("")
    mns.send(
        encode_body(state_change_event({"InstanceId": "i-after", "InstanceName": "after"}, "Running"), "raw")
    )
    wait_for(lambda: mns.depth() == 0, 30, message="every message handled")
    wait_for(lambda: len(seen(slack, "C_OPS", "Quarantined MNS message")) == 2, 20, message="2 reports")
    wait_for(
        lambda: seen(slack, "C_OPS", "before") and seen(slack, "C_OPS", "after"), 20, message="the events"
    )
    records = [json.loads(r) for r in bot.services.store.list_range(keys.QUARANTINE)]
    assert sorted(r["body"] for r in records) == ["", "\x01\x02 not even XML"]


def outboxes_empty(bot) -> bool:
    store = bot.services.store
    return not any(
        store.zrange_by_score(box(ch), float("-inf"), float("inf"), 1)
        for ch in store.hgetall(keys.CHANNELS)
        for box in (keys.outbox, keys.urgent)
    )


def test_duplicates_and_both_envelope_shapes_are_announced_once(events_bot):
    bot = events_bot()
    mns, slack = bot.emulator("mns"), bot.emulator("slack")
    a = state_change_event({"InstanceId": "i-dupa", "InstanceName": "dupa"}, "Stopping", shape="a")
    b = state_change_event({"InstanceId": "i-dupb", "InstanceName": "dupb"}, "Running", shape="b")
    c = interruption_event({"InstanceId": "i-dupc", "InstanceName": "dupc"})
    for body in (
        encode_body(a, "base64"),
        encode_body(a, "raw"),
        encode_body(b, "raw"),
        encode_body(c, "base64"),
    ):
        mns.send(body)
    mns.send_many([encode_body(a, "base64"), encode_body(b, "raw"), encode_body(c, "base64")])
    wait_for(lambda: mns.depth() == 0, 20, message="queue drained")
    wait_for(lambda: len(slack.channel_messages("C_OPS")) + len(slack.channel_messages("C_ALERTS")) >= 3, 20)
    wait_for(lambda: outboxes_empty(bot), 20, message="outboxes delivered")
    assert len(seen(slack, "C_OPS", "i-dupa → Stopping")) == 1
    assert len(seen(slack, "C_OPS", "dupb (i-dupb) → Running")) == 1
    assert len(seen(slack, "C_ALERTS", "dupc (i-dupc) is being reclaimed")) == 1
    assert len(slack.channel_messages("C_OPS")) == 2


def test_a_burst_is_coalesced_into_an_edited_digest_at_slack_pace(events_bot):
    bot = events_bot()
    mns, slack = bot.emulator("mns"), bot.emulator("slack")
    slack.set_rate_limit(1.0, burst=1)
    instances = [{"InstanceId": f"i-burst{n:03d}", "InstanceName": f"burst-{n:03d}"} for n in range(60)]
    bodies = [
        encode_body(
            state_change_event(instances[n % 60], ("Stopping", "Stopped", "Starting", "Running")[n // 60])
        )
        for n in range(240)
    ]
    mns.send_many(bodies)
    wait_for(lambda: mns.depth() == 0, 30, message="queue drained")
    wait_for(lambda: any(f.get("content") for f in slack.files.values()), 30, message="digest file")
    wait_for(lambda: outboxes_empty(bot) and bot.services.store.get(keys.channel_state("C_OPS")) is None, 20)
    assert max_rate_per_second(slack.post_times.get("C_OPS", []), window=5.0) <= 1.0
    assert not [c for c in slack.calls if c.status == 429]
    messages = slack.channel_messages("C_OPS")
    digests = [m for m in messages if m.text.startswith("ECS events digest")]
    singles = [m for m in messages if not m.text.startswith("ECS events digest")]
    assert digests and all(d.edits >= 1 for d in digests)
    content = "".join(f["content"].decode() for f in slack.files.values() if f.get("content"))
    lines = [ln for ln in content.splitlines() if ln and not ln.startswith("#")]
    assert len(lines) + len(singles) == 240
    for n in range(60):
        iid = f"i-burst{n:03d} "
        shown = sum(iid in ln for ln in lines) + sum(iid in m.text for m in singles)
        assert shown == 4, n
    assert len(slack.calls) < 30


def test_history_keeps_the_trail_of_a_released_instance(events_bot):
    bot = events_bot()
    ecs = bot.emulator("ecs")
    iid = by_name(ecs, "staging-db-11")
    ecs.set_status(iid, "Stopped")
    wait_for(lambda: bot.services.store.zrange_by_score(keys.history(iid), 0, float("inf")), 20)
    ecs.release(iid)
    wait_for(lambda: len(bot.services.store.zrange_by_score(keys.history(iid), 0, float("inf"))) == 2, 20)
    answer = slash(bot, "/ecs", "history staging-db-11 2", user="U_CAROL").json()
    flat = json.dumps(answer, ensure_ascii=False)
    assert "Released (deleted" in flat and "  → Stopped" in flat and "Stopped → Deleted" in flat
    assert iid in flat and "env=staging" in flat
    bad = slash(bot, "/ecs", "history", user="U_CAROL").json()
    assert "Usage" in bad["text"] and "/ecs history INSTANCE" in bad["text"]
