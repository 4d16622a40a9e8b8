"""`/ecs audit` through signed requests: changes apart from reading, filters, rejected commands recorded
as rejected, a long answer cut at a record boundary with the rest attached, pages with honest counts,
one line per change naming its approver, the CSV export, and retention."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest

from bot.audit import AuditRecord
from tests.support import click, find_button, slash, wait_for

SANDBOX_POLICY = Path(__file__).resolve().parents[2] / "sandbox" / "data" / "policy.yaml"
DAY = 86400


@pytest.fixture
def bot(make_bot):
    return make_bot(emulators=["slack", "ecs"], worker=False)


def audit(bot, args: str = "", user: str = "U_ALICE") -> dict:
    resp = slash(bot, "/ecs", f"audit {args}".strip(), user=user)
    assert resp.status == 200
    return resp.json()


def test_changes_by_default_reading_with_all(bot):
    slash(bot, "/ecs", "help", user="U_CAROL")
    slash(bot, "/ecs", "stop tag:env=dev", user="U_CAROL")  # refused: carol may only read
    changes = str(audit(bot)["blocks"])
    assert "ecs.stop" in changes and "deny" in changes and "ecs.help" not in changes
    assert "`--all` shows it too" in changes
    everything = str(audit(bot, "--all")["blocks"])
    assert "ecs.help" in everything and "ecs.stop" in everything


def test_a_rejected_command_is_recorded_as_rejected(bot):
    answer = slash(bot, "/ecs", "stop tag:env=dev --now").json()
    assert "is not an option" in answer["text"]
    slash(bot, "/ecs", "audit lots")
    records = bot.services.authz.recent(10, reads=True)
    stop = next(r for r in records if r.what == "ecs.stop")
    assert (stop.decision, stop.result) == ("allow", "rejected") and "--now" in stop.detail
    read = next(r for r in records if r.what == "ecs.audit")
    assert read.result == "rejected" and "not a count" in read.detail


def test_filters_by_user_action_instance_and_time(bot):
    authz = bot.services.authz
    now = time.time()
    for who, what, target, age in [
        ("U_BOB", "ecs.stop", "i-bp1aaaa1111", 60),
        ("U_BOB", "ecs.start", "i-bp1bbbb2222", 3 * 3600),
        ("U_DAVE", "ecs.reboot", "i-bp1aaaa1111", 60),
    ]:
        authz.append(AuditRecord(who, "C_OPS", what, [target], "allow", "ok", time=now - age))
    assert audit(bot, "user:<@U_BOB|bob>")["text"] == "Last 2 changes"
    assert audit(bot, "user:U_BOB action:ecs.st*")["text"] == "Last 2 changes"
    assert audit(bot, "instance:i-bp1aaaa1111")["text"] == "Last 2 changes"
    assert audit(bot, "user:U_BOB since:1h")["text"] == "Last 1 changes"
    assert audit(bot, "user:U_NOBODY")["text"] == "No changes match."
    assert "is not a time" in audit(bot, "since:yesterday")["text"]


def test_a_long_answer_is_cut_at_a_record_and_attaches_every_record(bot):
    authz = bot.services.authz
    for n in range(60):
        detail = f"/ecs stop name:web-{n:02d} " + "x" * 60
        authz.append(AuditRecord("U_BOB", "C_OPS", "ecs.stop", [f"i-bp1{n:08d}"], "allow", "ok", detail))
    answer = audit(bot, "60")
    code = next(b["text"]["text"] for b in answer["blocks"] if b["text"]["text"].startswith("```"))
    shown = code.strip("`").splitlines()
    assert 0 < len(shown) < 60 and all(line.endswith("x)") for line in shown)  # whole records only
    assert f"…and {60 - len(shown)} more not shown — all 60 are attached" in str(answer["blocks"])
    files = wait_for(lambda: list(bot.emulator("slack").files.values()), 10, message="the upload")
    assert files[0]["content"].decode().count("\n") == 60


def test_times_are_in_the_viewers_zone_and_say_which(bot):
    bot.services.authz.append(AuditRecord("U_BOB", "C_OPS", "ecs.stop", ["i-bp1aaaa1111"], "allow", "ok"))
    assert "Times in Asia/Shanghai" in str(audit(bot, user="U_BOB")["blocks"])  # bob's Slack profile
    assert "Times in America/New_York" in str(audit(bot, user="U_CAROL")["blocks"])


def texts(answer: dict) -> str:
    return str(answer["blocks"])


def add_changes(bot, n: int, who: str = "U_BOB", start: int = 0) -> None:
    """`n` changes, one a second, the newest (the highest number) now."""
    now = time.time()
    for i in range(start, start + n):
        target = [f"i-bp1{i:08d}"]
        at = now - (start + n - 1 - i)
        bot.services.authz.append(AuditRecord(who, "C_OPS", "ecs.stop", target, "allow", "ok", time=at))


def test_pages_show_where_they_are_and_how_to_see_more(bot):
    add_changes(bot, 45)
    first = audit(bot)
    assert first["text"] == "Last 20 changes"
    assert "Showing 1–20 of 45 · `/ecs audit page:2` for more" in texts(first)
    assert "i-bp100000044" in texts(first) and "i-bp100000024" not in texts(first)
    second = audit(bot, "page:2")
    assert second["text"] == "Changes 21–40 of 45" and "i-bp100000024" in texts(second)
    assert "`/ecs audit page:3` for more" in texts(second)
    last = audit(bot, "page:3")
    assert last["text"] == "Changes 41–45 of 45" and "Showing 41–45 of 45" in texts(last)
    assert "for more" not in texts(last)
    assert audit(bot, "page:4")["text"] == "Page 4 is past the end: 45 changes match (3 pages of 20)."
    add_changes(bot, 3, who="U_DAVE", start=100)
    mine = audit(bot, "10 user:<@U_BOB|bob> page:2")
    assert mine["text"] == "Changes 11–20 of 45"
    assert "`/ecs audit 10 user:U_BOB page:3` for more" in texts(mine)
    assert "page:" not in texts(audit(bot, "user:U_DAVE"))  # one page: no footer


def test_a_change_is_one_line_that_names_its_approver_and_rule(bot):
    authz = bot.services.authz
    decision = AuditRecord("U_BOB", "C_OPS", "ecs.reboot", ["i-bp1aaaa1111"], "pending", rule="approvals[0]")
    authz.append(decision)
    authz.record_result(decision, "ok", "rebooted 1", approver="U_DAVE", seconds=3.2)
    answer = audit(bot)
    assert answer["text"] == "Last 1 changes"
    line = next(b["text"]["text"] for b in answer["blocks"] if b["text"]["text"].startswith("```"))
    assert line.count("\n") == 0 and "ecs.reboot i-bp1aaaa1111  → ok (approved by <@U_DAVE>)" in line
    assert "[approvals[0]]  (rebooted 1)" in line
    assert audit(bot, "user:U_DAVE")["text"] == "Last 1 changes"  # the approver finds it too


def test_csv_exports_every_record_of_the_matching_changes(bot):
    authz = bot.services.authz
    add_changes(bot, 5, who="U_DAVE")
    decision = AuditRecord(
        "U_BOB", "C_OPS", "ecs.stop", ["i-bp1a", "i-bp1b"], "allow", detail="=cmd|' /C calc'!A0"
    )
    authz.append(decision)
    authz.record_result(decision, "ok", "stopped 2", approver="U_ALICE", request_ids=["REQ-1"], seconds=7.25)
    answer = audit(bot, "--csv user:U_BOB")
    assert answer["text"] == "Exported 2 records to `audit.csv` in this channel."
    assert "decision and its result share the `id`" in texts(answer)
    files = wait_for(lambda: list(bot.emulator("slack").files.values()), 10, message="the upload")
    (upload,) = files
    assert (upload["name"], upload["channel"], upload["title"]) == (
        "audit.csv",
        "C_OPS",
        "Audit trail: 2 records (user:U_BOB)",
    )
    result, first = csv.DictReader(io.StringIO(upload["content"].decode()))
    assert result["id"] == first["id"] == decision.id
    assert (result["result"], result["approver"], result["request_ids"], result["seconds"]) == (
        "ok",
        "U_ALICE",
        "REQ-1",
        "7.250",
    )
    assert (first["result"], first["decision"], first["targets"], first["who"]) == (
        "",
        "allow",
        "i-bp1a i-bp1b",
        "U_BOB",
    )
    assert first["detail"] == "'=cmd|' /C calc'!A0" and first["time"].endswith("Z") and "T" in first["time"]
    everything = audit(bot, "--csv")
    assert everything["text"] == "Exported 7 records to `audit.csv` in this channel."
    assert audit(bot, "--csv user:U_NOBODY")["text"] == "No records of changes match: nothing to export."


def test_a_confirmed_stop_is_one_line_with_its_result(make_bot, redis_url):
    bot = make_bot(redis_url=redis_url, emulators=["slack", "ecs"])
    bot.emulator("ecs").transition_seconds = 0.2
    preview = slash(bot, "/ecs", "stop tag:env=dev").json()
    click(bot, find_button(preview["blocks"], "plan.confirm"))
    wait_for(
        lambda: any("Stopped " in m.text for m in bot.emulator("slack").channel_messages("C_OPS")),
        30,
        message="the final report",
    )
    wait_for(lambda: any(r.result == "ok" for r in bot.services.authz.recent(10)), 10, message="the result")
    answer = audit(bot, "action:ecs.stop")
    code = next(b["text"]["text"] for b in answer["blocks"] if b["text"]["text"].startswith("```"))
    assert answer["text"] == "Last 2 changes"  # the preview's decision, and the confirmed change
    assert code.count("→ ok") == 1 and code.count("→ allow") == 1
    audit(bot, "--csv action:ecs.stop")
    files = wait_for(lambda: list(bot.emulator("slack").files.values()), 10, message="the upload")
    rows = list(csv.DictReader(io.StringIO(files[-1]["content"].decode())))
    assert len(rows) == 3 and len({r["id"] for r in rows}) == 2  # the confirmed change: decision + result


def test_the_retention_job_drops_records_past_the_policys_retention(make_bot, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(SANDBOX_POLICY.read_text() + "\naudit:\n  retention_days: 30\n")
    calendar = SANDBOX_POLICY.parent / "company-holidays.ics"  # named beside the policy file
    (tmp_path / calendar.name).write_bytes(calendar.read_bytes())
    bot = make_bot(emulators=["slack"], env={"CHATOPS_CONFIG": str(policy)}, worker=False)
    assert bot.services.policy.audit.retention_days == 30
    authz, now = bot.services.authz, time.time()
    for n, age in enumerate([45, 31, 29, 1]):
        authz.append(
            AuditRecord("U_BOB", "C_OPS", "ecs.stop", [f"i-bp1old{n}"], "allow", "ok", time=now - age * DAY)
        )
    authz.append(AuditRecord("U_BOB", "C_OPS", "ecs.help", [], "allow", time=now - 40 * DAY))
    job = bot.services.registry.jobs["audit.retention"]
    assert job.cron == {"minute": "23"}  # the worker's scheduler runs it hourly, once across workers
    assert job.fn(bot.services) == 3 and len(authz.recent(10, reads=True)) == 2
    answer = audit(bot)
    assert (
        answer["text"] == "Last 2 changes"
        and "i-bp1old2" in texts(answer)
        and "i-bp1old1" not in texts(answer)
    )
