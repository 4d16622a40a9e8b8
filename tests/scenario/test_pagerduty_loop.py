"""The whole loop against the PagerDuty and Slack emulators: calendar → incident → webhook → Slack card →
button → PUT as the clicker → webhook → card edited, with duplicate and concurrent webhook deliveries;
calendar edits after the start; resolve at the end; commands; legacy V2; the sandbox script."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from handlers.pagerduty.calendar_sync import sync_all
from sandbox.pagerduty_calendar import calendar, vevent
from tests.support import cards, click, ephemerals, find_button, replies, slash, wait_for

ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def write_calendar(path, *events) -> str:
    path.write_text(calendar(*events))
    return str(path)


@pytest.fixture
def now():
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def test_calendar_to_incident_to_card_and_buttons_with_duplicate_webhooks(make_bot, redis_url, tmp_path, now):
    ics = write_calendar(
        tmp_path / "ops.ics",
        vevent(
            "tls@ops",
            now - dt.timedelta(seconds=1),
            now + dt.timedelta(minutes=30),
            summary="Rotate TLS certificates",
        ),
    )
    bot = make_bot(redis_url=redis_url, emulators=["slack", "pagerduty"], env={"CALENDAR_ICS_URLS": ics})
    pd, slack = bot.emulator("pagerduty"), bot.emulator("slack")
    pd.webhooks.duplicates = 1
    pd.webhooks.concurrent_duplicates = 2
    for _ in range(3):  # re-syncs (and the worker's own start-up sync) never open a second incident
        sync_all(bot.services)
    wait_for(lambda: cards(slack), message="the incident card")
    assert len(pd.incident_by_title("Rotate TLS certificates")) == 1
    [incident] = pd.incident_by_title("Rotate TLS certificates")
    assert (
        incident["incident_key"].startswith("chatops-cal-")
        and "Planned work from calendar" in incident["details"]
    )
    [card] = cards(slack)
    assert "#1 Rotate TLS certificates — triggered" in card.text
    rendered = str(card.blocks)
    assert "Planned work" in rendered and "Alice Admin" in rendered and "Alibaba Cloud Ops" in rendered

    assert (
        click(bot, find_button(card.blocks, "pagerduty.acknowledge"), user="U_BOB", message_ts=card.ts).status
        == 200
    )
    wait_for(
        lambda: "acknowledged" in slack.message("C_OPS", card.ts).text and replies(slack), message="ack edit"
    )
    put = pd.calls_named("PUT /incidents/{id}")[-1]
    assert (
        put.request.headers["from"] == "bob@example.com"
        and put.request.json()["incident"]["status"] == "acknowledged"
    )
    edited = slack.message("C_OPS", card.ts)
    with pytest.raises(AssertionError):
        find_button(edited.blocks, "pagerduty.acknowledge")
    assert (
        click(bot, find_button(edited.blocks, "pagerduty.resolve"), user="U_BOB", message_ts=card.ts).status
        == 200
    )
    wait_for(
        lambda: "resolved" in slack.message("C_OPS", card.ts).text and len(replies(slack)) == 2,
        message="resolve",
    )
    pd.webhooks.drain()
    wait_for(lambda: bot.services.queue.pending() == 0, message="queue drained")
    assert len(cards(slack)) == 1 and len(replies(slack)) == 2
    assert [r.text.splitlines()[0] for r in replies(slack)] == [
        "*Bob Operator* acknowledged the incident.",
        "*Bob Operator* resolved the incident.",
    ]
    assert all(b.get("type") != "actions" for b in slack.message("C_OPS", card.ts).blocks)  # no buttons left
    copies = {}
    for attempt in pd.webhooks.attempts:
        copies.setdefault(attempt.webhook_id, []).append(attempt.status)
    assert len(copies) == 3 and all(len(s) == 4 and set(s) == {202} for s in copies.values())
    assert "Requested from Slack by <@U_BOB>" in replies(slack)[0].text


def test_calendar_edits_after_the_start_become_notes_and_the_end_resolves(make_bot, redis_url, tmp_path, now):
    path = tmp_path / "planned.ics"
    event = dict(uid="db@ops", start=now - dt.timedelta(seconds=1), end=now + dt.timedelta(minutes=10))
    write_calendar(path, vevent(summary="Failover drill", **event))
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "roles:\n  operators:\n    members: [U_BOB]\n    permissions: ['incident.*']\n"
        f"calendars:\n  - url: {path}\n    channel: C_ALERTS\n    resolve_at_end: true\n"
    )
    env = {
        "CHATOPS_CONFIG": str(policy),
        "CALENDAR_ICS_URLS": str(path),
    }  # listed twice: the policy entry wins
    bot = make_bot(redis_url=redis_url, emulators=["slack", "pagerduty"], env=env)
    pd, slack = bot.emulator("pagerduty"), bot.emulator("slack")
    sync_all(bot.services)
    wait_for(lambda: cards(slack, "C_ALERTS"), message="card in the mapped channel")
    [incident] = pd.incident_by_title("Failover drill")

    write_calendar(path, vevent(summary="Failover drill (extended)", sequence=1, **event))
    sync_all(bot.services)
    sync_all(bot.services)
    wait_for(lambda: len(pd.notes.get(incident["id"], [])) == 1, message="one note for the edit")
    assert "title “Failover drill” → “Failover drill (extended)”" in pd.notes[incident["id"]][0]["content"]

    write_calendar(path, vevent("other@ops", now + dt.timedelta(days=3), now + dt.timedelta(days=3, hours=1)))
    sync_all(bot.services)
    sync_all(bot.services)
    wait_for(lambda: len(pd.notes.get(incident["id"], [])) == 2, message="one note for the removal")
    assert "removed from the calendar" in pd.notes[incident["id"]][1]["content"]

    sync_all(bot.services, now=now + dt.timedelta(minutes=11))  # after the planned end
    wait_for(lambda: pd.incidents[incident["id"]]["status"] == "resolved", message="resolved at the end")
    wait_for(lambda: "resolved" in cards(slack, "C_ALERTS")[0].text, message="card shows it")
    wait_for(lambda: len(replies(slack, "C_ALERTS")) == 4, message="notes and resolve in the thread")
    assert len(pd.incident_by_title("Failover drill")) == 1 and cards(slack, "C_OPS") == []
    # quick successive events may be processed by different worker threads: replies can interleave
    assert sorted(r.text.split("\n")[0] for r in replies(slack, "C_ALERTS")) == [
        "*ChatOps Bot* added a note:",
        "*ChatOps Bot* added a note:",
        "*ChatOps Bot* added a note:",
        "*ChatOps Bot* resolved the incident.",
    ]


def test_commands_permissions_and_acting_without_a_pagerduty_account(make_bot, redis_url, tmp_path):
    bot = make_bot(
        redis_url=redis_url,
        emulators=["slack", "pagerduty"],
        env={"CALENDAR_ICS_URLS": write_calendar(tmp_path / "empty.ics"), "CHATOPS_ADMINS": "U_ALICE,U_NOVA"},
    )
    pd, slack = bot.emulator("pagerduty"), bot.emulator("slack")
    slack.users["U_NOVA"] = {  # a Slack user without a PagerDuty account
        "name": "nova",
        "real_name": "Nova New",
        "email": "nova@example.com",
        "tz": "UTC",
    }

    usage = slash(bot, "/incident", "new --urgency low", user="U_BOB").json()["text"]
    assert "Give the incident a title" in usage and "Usage:" in usage
    answer = slash(bot, "/incident", 'new "DB latency on rds-2" --urgency low', user="U_BOB").json()
    assert "Opening “DB latency on rds-2”" in answer["text"]
    wait_for(lambda: cards(slack), message="card of the new incident")
    [incident] = pd.incident_by_title("DB latency on rds-2")
    assert incident["urgency"] == "low"
    assert pd.calls_named("POST /incidents")[-1].request.headers["from"] == "bob@example.com"
    wait_for(lambda: any("Opened" in t for t in ephemerals(slack, "U_BOB")), message="the outcome")

    listing = slash(bot, "/incident", "list", user="U_CAROL").json()
    assert "DB latency on rds-2" in str(listing["blocks"]) and incident["id"] in str(listing["blocks"])
    assert (
        "is not an incident status" in slash(bot, "/incident", "list closed", user="U_CAROL").json()["text"]
    )

    [card] = cards(slack)
    assert (
        click(
            bot, find_button(card.blocks, "pagerduty.acknowledge"), user="U_CAROL", message_ts=card.ts
        ).status
        == 200
    )
    wait_for(lambda: any("not allowed" in t for t in ephemerals(slack, "U_CAROL")), message="refusal")
    assert pd.calls_named("PUT /incidents/{id}") == []

    slash(bot, "/incident", f"ack {incident['id']}", user="U_NOVA")
    [ack] = wait_for(
        lambda: [r for r in replies(slack) if "acknowledged the incident" in r.text], message="ack"
    )
    assert pd.calls_named("PUT /incidents/{id}")[-1].request.headers["from"] == "oncall-bot@example.com"
    assert "no PagerDuty user has their Slack e-mail" in ack.text
    # PagerDuty's own record names the Slack user too: a note by the bot's user
    [note] = wait_for(lambda: pd.notes.get(incident["id"]), message="the note naming the Slack user")
    assert (
        note["content"] == "The incident was acknowledged from Slack by Nova New, who has no PagerDuty user."
    )
    assert note["user"]["summary"] == "ChatOps Bot"
    wait_for(
        lambda: any("from Slack by Nova New" in r.text for r in replies(slack)), message="the note's line"
    )
    wait_for(
        lambda: any("no PagerDuty user with your Slack e-mail" in t for t in ephemerals(slack, "U_NOVA"))
    )
    slash(bot, "/incident", f"ack {incident['id']}", user="U_NOVA")
    wait_for(lambda: any("already acknowledged" in t for t in ephemerals(slack, "U_NOVA")), message="no-op")
    assert (
        "not a PagerDuty incident id" in slash(bot, "/incident", "resolve what?", user="U_BOB").json()["text"]
    )

    oncall = slash(bot, "/oncall", "ops escalation", user="U_CAROL").json()
    text = str(oncall["blocks"])
    assert (
        "Ops Escalation" in text
        and "Level 1: Alice Admin (Primary Ops)" in text
        and "Level 2: Bob Operator" in text
    )
    assert "America/New_York" in text and "Database Escalation" not in text
    assert (
        "No escalation policy or schedule matches"
        in slash(bot, "/oncall", "payments", user="U_CAROL").json()["text"]
    )
    everyone = str(slash(bot, "/oncall", "", user="U_ALICE").json()["blocks"])
    assert "Database Escalation" in everyone and "Europe/Berlin" in everyone


def pd_bot(make_bot, redis_url, tmp_path):
    """The bot with Slack and PagerDuty, and a calendar with nothing planned."""
    return make_bot(
        redis_url=redis_url,
        emulators=["slack", "pagerduty"],
        env={"CALENDAR_ICS_URLS": write_calendar(tmp_path / "empty.ics")},
    )


def test_the_number_on_a_card_works_wherever_an_incident_id_does(make_bot, redis_url, tmp_path):
    bot = pd_bot(make_bot, redis_url, tmp_path)
    pd, slack = bot.emulator("pagerduty"), bot.emulator("slack")
    slash(bot, "/incident", "new Disk full on batch-07", user="U_BOB")
    [card] = wait_for(lambda: cards(slack), message="the card")
    [incident] = pd.incident_by_title("Disk full on batch-07")
    assert f"#{incident['number']}" in card.text + str(card.blocks)
    slash(bot, "/incident", f"ack {incident['number']}", user="U_BOB")
    wait_for(
        lambda: pd.incidents[incident["id"]]["status"] == "acknowledged", message="acknowledged by number"
    )
    slash(bot, "/incident", f"resolve #{incident['number']}", user="U_BOB")
    wait_for(lambda: pd.incidents[incident["id"]]["status"] == "resolved", message="resolved by #number")
    slash(bot, "/incident", "ack #99999", user="U_BOB")
    unknown = wait_for(lambda: [t for t in ephemerals(slack, "U_BOB") if "#99999" in t and ":x:" in t])
    assert "No open incident #99999" in unknown[0] and "`Q1ABC23DEF`" in unknown[0]
    refused = slash(bot, "/incident", "resolve what?", user="U_BOB").json()["text"]
    assert "incident id (`Q1ABC23DEF`) or an incident number (`#12`)" in refused


def test_a_button_value_that_is_no_incident_id_changes_nothing_and_says_so(make_bot, redis_url, tmp_path):
    bot = pd_bot(make_bot, redis_url, tmp_path)
    pd, slack = bot.emulator("pagerduty"), bot.emulator("slack")
    for value in ("../services/PSVC001", "Q" * 100_000, "#1"):
        button = {"action_id": "pagerduty.acknowledge", "value": value}
        assert click(bot, button, user="U_BOB").status == 200
    answers = wait_for(lambda: [t for t in ephemerals(slack, "U_BOB") if "nothing was changed" in t] or None)
    wait_for(lambda: len([t for t in ephemerals(slack, "U_BOB") if "nothing was changed" in t]) == 3)
    assert all("does not name a PagerDuty incident" in t for t in answers)
    assert pd.calls_named("PUT /incidents/{id}") == []


def test_legacy_v2_webhooks_drive_the_same_card(make_bot, redis_url, tmp_path):
    bot = make_bot(
        redis_url=redis_url,
        emulators=["slack", "pagerduty"],
        env={"CALENDAR_ICS_URLS": write_calendar(tmp_path / "empty.ics")},
    )
    pd, slack = bot.emulator("pagerduty"), bot.emulator("slack")
    pd.webhooks.legacy_v2 = True
    pd.webhooks.duplicates = 1
    slash(bot, "/incident", "new Packet loss in cn-hangzhou-h", user="U_BOB")
    wait_for(lambda: cards(slack), message="card from a V2 delivery")
    [incident] = pd.incident_by_title("Packet loss in cn-hangzhou-h")
    slash(bot, "/incident", f"resolve {incident['id']}", user="U_BOB")
    wait_for(lambda: "resolved" in cards(slack)[0].text and replies(slack), message="resolved via V2")
    pd.webhooks.drain()
    wait_for(lambda: bot.services.queue.pending() == 0, message="queue drained")
    assert len(cards(slack)) == 1 and len(replies(slack)) == 1
    assert all(b"messages" in d["body"] for d in pd.webhooks.delivered)


def test_sandbox_script_planned_work_becomes_one_incident_acknowledged_then_resolved(tmp_path):
    script = "\n".join(
        [
            "as bob",
            "expect rolling restart of the web tier 60",
            "click 1",
            "expect acknowledged the incident 30",
            "click 1",  # the edited card's only button: Resolve
            "expect resolved the incident 30",
            "/incident list all",
            "expect #1 60",
        ]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "sandbox", "--script", "-", "--data-dir", str(tmp_path)],
        input=script,
        capture_output=True,
        text=True,
        timeout=150,
        env={**ENV, "SANDBOX_PLANNED_WORK_DELAY": "0"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert out.count("[#ops] chatops:\n    :rotating_light: *#1 Planned maintenance: rolling restart") == 1
    card_edits = out.count("[#ops] chatops (edited):\n    :eyes: *#1") + out.count(
        "[#ops] chatops (edited):\n    :white_check_mark: *#1"
    )
    assert card_edits == 2 and "*Status* :white_check_mark: Resolved" in out
    assert (
        "*Bob Operator* acknowledged the incident." in out and "*Bob Operator* resolved the incident." in out
    )
    assert "#2" not in out  # one incident, one message
    assert "0 failed step(s)" in out
