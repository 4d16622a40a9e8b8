"""The audit trail on both store backends: records newest first across both lists, one JSON log line per
record, result records stamped by the clock, and retention from the oldest end (also the periodic job,
with a ManualClock)."""

from __future__ import annotations

import io
import json
import logging
from types import SimpleNamespace

import pytest

from bot.audit import (
    AUDIT_KEY,
    PAGE,
    READS_KEY,
    AuditLog,
    AuditRecord,
    latest_per_change,
    of_matching_changes,
)
from bot.logs import AUDIT_LOGGER, configure_logging, register_secret
from bot.policy import load_policy
from bot.registry import Registry
from handlers import audit as audit_handler

DAY = 86400.0


@pytest.fixture
def trail(store, clock):
    return AuditLog(store, reads={"ecs.help"}, clock=clock)


def record(n: int, at: float, what: str = "ecs.stop", **more) -> AuditRecord:
    return AuditRecord(f"U{n}", "C_OPS", what, [f"i-{n:04d}"], "allow", "ok", time=at, id=f"r{n}", **more)


def stored(store, key: str = AUDIT_KEY) -> list[str]:
    return [json.loads(raw)["id"] for raw in store.list_range(key)]


def test_reading_is_kept_apart_and_a_scan_merges_both_lists_newest_first(trail, store, clock):
    now = clock.time()
    trail.append(record(1, now - 30))
    trail.append(record(2, now - 20, what="ecs.help"))
    trail.append(record(3, now - 10))
    assert stored(store) == ["r3", "r1"] and stored(store, READS_KEY) == ["r2"]
    assert [r.id for r in trail.scan()] == ["r3", "r1"]
    assert [r.id for r in trail.scan(reads=True)] == ["r3", "r2", "r1"]


def test_a_result_is_a_second_record_stamped_by_the_clock_and_the_newest_stands_for_the_change(trail, clock):
    decision = record(1, clock.time())
    decision.result = None
    trail.append(decision)
    clock.advance(42)
    trail.record_result(decision, "ok", "stopped 3", approver="U_BOSS", request_ids=["REQ-1"], seconds=41.5)
    found = list(trail.scan())
    assert [(r.id, r.result, r.time) for r in found] == [
        ("r1", "ok", clock.time()),
        ("r1", None, clock.time() - 42),
    ]
    (latest,) = latest_per_change(found)
    assert (latest.approver, latest.request_ids, latest.seconds) == ("U_BOSS", ["REQ-1"], 41.5)
    by_boss = list(of_matching_changes(found, lambda r: r.approver == "U_BOSS"))
    assert len(by_boss) == 2  # the decision goes with its result, which names the approver


def test_a_scan_reads_at_most_its_limit_and_says_so(trail, clock):
    for n in range(12):
        trail.append(record(n, clock.time() + n))
    capped = trail.scan(limit=5)
    assert [r.id for r in capped] == ["r11", "r10", "r9", "r8", "r7"] and capped.capped
    whole = trail.scan(limit=12)
    assert len(list(whole)) == 12 and not whole.capped


def test_records_pushed_during_a_scan_neither_repeat_nor_hide_older_ones(trail, clock):
    for n in range(PAGE * 2):
        trail.append(record(n, clock.time() + n))
    scan = iter(trail.scan())
    first = [next(scan) for _ in range(PAGE)]  # the first page, read whole
    for n in range(PAGE * 2, PAGE * 2 + 10):
        trail.append(record(n, clock.time() + n))  # the next page moves by 10
    ids = [r.id for r in first + list(scan)]
    assert ids == [f"r{n}" for n in reversed(range(PAGE * 2))]


@pytest.fixture
def log_lines():
    """The process's JSON logs (configure_logging, as `chatops web` / `worker` set them up) at WARNING."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger(AUDIT_LOGGER).level)
    out = io.StringIO()
    configure_logging("WARNING", stream=out)
    yield out
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    logging.getLogger(AUDIT_LOGGER).setLevel(saved[2])


def test_every_record_is_one_json_log_line_at_any_level_with_secrets_masked(trail, log_lines):
    register_secret("xoxb-audit-secret")
    logging.getLogger("bot.somewhere").info("not at WARNING")
    trail.append(record(7, 1_800_000_000.0, detail="/ecs run tag:env=dev -- echo xoxb-audit-secret"))
    trail.append(record(8, 1_800_000_001.0, what="ecs.help"))
    text = log_lines.getvalue()
    lines = [line for line in text.splitlines() if json.loads(line)["logger"] == AUDIT_LOGGER]
    assert len(lines) == 2 and "not at WARNING" not in text
    change, read = (json.loads(line) for line in lines)
    assert change["logger"] == "chatops.audit" and change["msg"] == "audit" and change["trail"] == "changes"
    assert (change["who"], change["what"], change["decision"], change["targets"]) == (
        "U7",
        "ecs.stop",
        "allow",
        ["i-0007"],
    )
    assert change["id"] == "r7" and change["time"] == 1_800_000_000.0
    assert "xoxb-audit-secret" not in lines[0] and "***" in change["detail"]
    assert read["trail"] == "reads" and read["what"] == "ecs.help"


def test_trim_drops_the_old_tail_of_both_lists_and_nothing_newer(trail, store, clock):
    now = clock.time()
    for n, age in enumerate([100, 95, 91, 89, 10, 0]):
        trail.append(record(n, now - age * DAY))
    trail.append(record(10, now - 200 * DAY, what="ecs.help"))
    trail.append(record(11, now - DAY, what="ecs.help"))
    assert trail.trim(now - 90 * DAY) == 4
    assert stored(store) == ["r5", "r4", "r3"] and stored(store, READS_KEY) == ["r11"]
    assert trail.trim(now - 90 * DAY) == 0 and stored(store) == ["r5", "r4", "r3"]
    assert trail.trim(now + 1) == 4 and stored(store) == [] and stored(store, READS_KEY) == []


def test_trim_stops_at_the_oldest_record_it_keeps(trail, store, clock):
    """Records are only roughly in time order (replicas' clocks): the list is cut, never holed."""
    now = clock.time()
    for n, age in enumerate([100, 5, 99, 98]):  # r1 is out of order
        trail.append(record(n, now - age * DAY))
    assert trail.trim(now - 90 * DAY) == 1
    assert stored(store) == ["r3", "r2", "r1"]


def test_trim_reads_the_tail_in_pages_and_keeps_records_pushed_meanwhile(trail, store, clock):
    now = clock.time()
    for n in range(PAGE * 2 + 7):
        trail.append(record(n, now - 100 * DAY + n))
    for n in range(5000, 5003):
        trail.append(record(n, now))
    assert trail.trim(now - 90 * DAY) == PAGE * 2 + 7
    assert stored(store) == ["r5002", "r5001", "r5000"]


def test_unreadable_records_in_the_old_tail_go_with_it(trail, store, clock):
    store.list_push(AUDIT_KEY, "not a record")
    trail.append(record(1, clock.time() - 100 * DAY))
    trail.append(record(2, clock.time()))
    assert trail.trim(clock.time() - 90 * DAY) == 2 and stored(store) == ["r2"]


def test_the_retention_job_follows_the_policy_and_the_clock(store, clock, tmp_path):
    registry = Registry().include(audit_handler.capability)
    path = tmp_path / "policy.yaml"
    path.write_text("audit:\n  retention_days: 7\n")
    services = SimpleNamespace(store=store, clock=clock, policy=load_policy(path, registry))
    trail = AuditLog(store, clock=clock)
    trail.append(record(1, clock.time()))
    clock.advance(6 * DAY)
    trail.append(record(2, clock.time()))
    assert audit_handler.trim_audit(services) == 0
    clock.advance(DAY + 1)
    assert audit_handler.trim_audit(services) == 1 and stored(store) == ["r2"]
    assert registry.jobs["audit.retention"].cron == {"minute": "23"}
    default = SimpleNamespace(store=store, clock=clock, policy=load_policy(None, registry))
    assert default.policy.audit.retention_days == 90
    clock.advance(90 * DAY)
    assert audit_handler.trim_audit(default) == 1 and stored(store) == []
