"""`/ecs audit` through signed requests: changes apart from reading, filters, rejected commands recorded
as rejected, and a long answer cut at a record boundary with the rest attached."""

from __future__ import annotations

import time

import pytest

from bot.authz import AuditRecord
from tests.support import slash, wait_for


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
