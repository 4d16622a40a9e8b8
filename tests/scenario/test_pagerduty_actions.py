"""Incident actions from Slack at parity with PagerDuty's own app, through the real entry points (signed
slash commands, clicks, menu choices and modal submissions into the running app; the real `pagerduty`
client against the emulator; real Redis and worker): show, reassign, escalate, note, snooze, priority,
urgency — authorized, audited, acting as the clicker's PagerDuty user (else the bot's, with a note
naming them), refused with a reason when PagerDuty would refuse, and the card telling the truth after
each change, also after changes made in PagerDuty itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import (
    cards,
    choose,
    click,
    ephemerals,
    find_button,
    find_element,
    replies,
    run_sandbox_script,
    slash,
    submit_view,
    wait_for,
)


@pytest.fixture
def bot(make_bot, redis_url, tmp_path):
    empty = tmp_path / "empty.ics"
    empty.write_text("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\nEND:VCALENDAR\n")
    return make_bot(
        redis_url=redis_url,
        emulators=["slack", "pagerduty"],
        env={"CALENDAR_ICS_URLS": str(empty), "CHATOPS_ADMINS": "U_ALICE,U_NOVA"},
    )


def open_incident(bot, title: str, user: str = "U_BOB"):
    """An incident opened with `/incident new`, once its card is in #ops: (PagerDuty's record, the card)."""
    pd, slack = bot.emulator("pagerduty"), bot.emulator("slack")
    slash(bot, "/incident", f"new {title}", user=user)
    card = wait_for(lambda: [c for c in cards(slack) if title in c.text], message=f"the card of {title}")[0]
    [incident] = pd.incident_by_title(title)
    return incident, card


def card_of(bot, card):
    return bot.emulator("slack").message("C_OPS", card.ts)


def block_text(blocks: list[dict]) -> str:
    """Every text of the blocks (sections, their fields, contexts, controls' labels), one a line."""
    out: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                if isinstance(value, (dict, list)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(out)


def card_text(bot, card) -> str:
    message = card_of(bot, card)
    return message.text + "\n" + block_text(message.blocks)


def thread(bot, card) -> list[str]:
    return [r.text for r in replies(bot.emulator("slack"), thread_ts=card.ts)]


def said(bot, user: str, text: str):
    return wait_for(
        lambda: [t for t in ephemerals(bot.emulator("slack"), user) if text in t],
        message=f"{user} is told {text!r}",
    )


def settled(bot):
    bot.emulator("pagerduty").webhooks.drain()
    wait_for(lambda: bot.services.queue.pending() == 0, message="the queue drained")


def test_show_gives_details_timeline_and_notes_in_the_viewers_zone_with_the_controls(bot):
    pd_api = bot.services.adapter("pagerduty")
    incident, _card = open_incident(bot, "Checkout latency over 2s")
    for n in range(12):
        pd_api.add_note(incident["id"], f"finding {n} <!channel>", from_email="carol@example.com")
    shown = slash(bot, "/incident", f"show #{incident['number']}", user="U_BOB").json()  # Bob: Asia/Shanghai
    text = block_text(shown["blocks"])
    for part in ("Checkout latency over 2s", "Alibaba Cloud Ops", "Triggered", "High", "Alice Admin"):
        assert part in text
    assert "Ops Escalation (level 1 of 3)" in text and "*Priority*\nnone" in text
    assert "CST" in text  # created, in the viewer's zone
    timeline = next(b["text"]["text"] for b in shown["blocks"] if "*Timeline*" in str(b))
    assert "(newest 10)" in timeline and timeline.count("\n") == 10 and "finding 11" in timeline
    notes = next(b["text"]["text"] for b in shown["blocks"] if "*Notes*" in str(b))
    assert "(newest 5 of 12)" in notes and "Carol Viewer" in notes and "&lt;!channel&gt;" in notes
    assert "<!channel>" not in text
    find_button(shown["blocks"], "pagerduty.acknowledge")
    assert find_element(shown["blocks"], "pagerduty.more")["type"] == "overflow"
    again = block_text(slash(bot, "/incident", f"show {incident['id']}", user="U_CAROL").json()["blocks"])
    assert "Checkout latency" in again and ("EST" in again or "EDT" in again)  # reading is open to all

    unknown = slash(bot, "/incident", "show QNOSUCH123", user="U_BOB").json()["text"]
    assert "PagerDuty has no incident `QNOSUCH123`" in unknown
    assert "No open incident #999" in slash(bot, "/incident", "show #999", user="U_BOB").json()["text"]
    assert "Usage:" in slash(bot, "/incident", "show", user="U_BOB").json()["text"]


def test_commands_walk_an_incident_through_every_change_and_the_card_tells_the_truth(bot):
    pd = bot.emulator("pagerduty")
    incident, card = open_incident(bot, "Disk full on oss-gw-2")
    label = f"#{incident['number']}"

    answer = slash(bot, "/incident", f"reassign {label} <@U_ERIN|erin>", user="U_BOB").json()["text"]
    assert f"Reassigning `{label}` to Erin SRE" in answer
    wait_for(lambda: "Erin SRE" in card_text(bot, card), message="the card shows the new assignee")
    wait_for(
        lambda: any(
            t.startswith("*Bob Operator* reassigned the incident to Erin SRE.") for t in thread(bot, card)
        )
    )
    assert any("Requested from Slack by <@U_BOB>" in t for t in thread(bot, card) if "reassigned" in t)
    said(bot, "U_BOB", f"{label} reassigned to Erin SRE in PagerDuty as bob@example.com")

    slash(bot, "/incident", f"reassign {label} policy database", user="U_BOB")
    wait_for(lambda: "Database Escalation" in card_text(bot, card) and "Carol Viewer" in card_text(bot, card))
    wait_for(lambda: any("to the escalation policy Database Escalation" in t for t in thread(bot, card)))

    slash(bot, "/incident", f"escalate {label}", user="U_BOB")
    wait_for(lambda: "*Assigned to*\nBob Operator" in card_text(bot, card), message="escalated to level 2")
    assert pd.incidents[incident["id"]]["escalation_level"] == 2
    put = pd.calls_named("PUT /incidents/{id}")[-1].request.json()["incident"]
    assert put == {"type": "incident_reference", "escalation_level": 2}
    wait_for(lambda: any("escalated the incident to Bob Operator" in t for t in thread(bot, card)))

    slash(bot, "/incident", f"note {label} rotating logs <b>now</b>", user="U_BOB")
    wait_for(
        lambda: any("added a note:\n> rotating logs &lt;b&gt;now&lt;/b&gt;" in t for t in thread(bot, card))
    )
    assert pd.notes[incident["id"]][-1]["content"] == "rotating logs <b>now</b>"

    refused = slash(bot, "/incident", f"snooze {label} 4h", user="U_BOB").json()["text"]
    assert "Snoozing" in refused
    said(bot, "U_BOB", "PagerDuty snoozes only acknowledged incidents")
    assert pd.calls_named("POST /incidents/{id}/snooze") == []  # refused before asking PagerDuty

    slash(bot, "/incident", f"ack {label}", user="U_BOB")
    wait_for(lambda: "Acknowledged" in card_text(bot, card), message="acknowledged")
    slash(bot, "/incident", f"snooze {label} 4h", user="U_BOB")
    wait_for(lambda: "Snoozed until" in card_text(bot, card), message="the card shows the snooze")
    wait_for(
        lambda: any(
            t.startswith("*Bob Operator* snoozed the incident for 4 hours.") for t in thread(bot, card)
        )
    )
    assert pd.incidents[incident["id"]]["pending_actions"][0]["type"] == "unacknowledge"

    slash(bot, "/incident", f"priority {label} p2", user="U_BOB")
    wait_for(lambda: "*Priority*\nP2" in card_text(bot, card), message="priority P2")
    wait_for(lambda: any("changed the priority to P2" in t for t in thread(bot, card)))
    slash(bot, "/incident", f"urgency {label} low", user="U_BOB")
    wait_for(lambda: "*Urgency*\nLow" in card_text(bot, card), message="low urgency")
    wait_for(lambda: any("changed the urgency to low" in t for t in thread(bot, card)))
    assert "Snoozed until" in card_text(bot, card)  # an urgency change keeps the snooze

    slash(bot, "/incident", f"resolve {label}", user="U_BOB")
    wait_for(lambda: "Resolved" in card_text(bot, card), message="resolved")
    settled(bot)
    assert all(b.get("type") != "actions" for b in card_of(bot, card).blocks)
    assert "Snoozed until" not in card_text(bot, card)
    audited = [r for r in bot.services.authz.recent(50) if r.who == "U_BOB" and r.targets == [label]]
    assert {r.what for r in audited} >= {
        "incident.reassign",
        "incident.escalate",
        "incident.note",
        "incident.snooze",
        "incident.priority",
        "incident.urgency",
    }
    assert {r.result for r in audited if r.what == "incident.snooze" and r.result} == {"error", "ok"}


def test_the_cards_controls_menus_and_modals(bot):
    pd, slack = bot.emulator("pagerduty"), bot.emulator("slack")
    incident, card = open_incident(bot, "Packet loss in cn-shanghai-b")

    more = find_element(card.blocks, "pagerduty.more")
    assert [o["text"]["text"] for o in more["options"]] == [
        "Reassign…",
        "Escalate to the next level",
        "Set priority…",
        "Make it low urgency",
        "Details and timeline",
    ]
    with pytest.raises(AssertionError):
        find_element(card.blocks, "pagerduty.snooze")  # only once acknowledged
    choose(bot, more, f"escalate:{incident['id']}", user="U_ERIN", message_ts=card.ts)
    wait_for(lambda: "*Assigned to*\nBob Operator" in card_text(bot, card), message="escalated from the menu")
    choose(bot, more, f"show:{incident['id']}", user="U_ERIN", message_ts=card.ts)
    said(bot, "U_ERIN", "Packet loss in cn-shanghai-b")  # the details, to the clicker only

    click(bot, find_button(card_of(bot, card).blocks, "pagerduty.note"), user="U_ERIN", message_ts=card.ts)
    note_form = wait_for(
        lambda: [v["view"] for v in slack.views if v["view"].get("callback_id") == "pagerduty.note_form"]
    )[0]
    assert submit_view(bot, note_form, {"note_text": "   "}, user="U_ERIN").json()["errors"] == {
        "note": "The note is empty: write what to add."
    }
    assert submit_view(bot, note_form, {"note_text": "BGP session flapping"}, user="U_ERIN").status == 200
    wait_for(lambda: any("added a note:\n> BGP session flapping" in t for t in thread(bot, card)))
    assert pd.calls_named("POST /incidents/{id}/notes")[-1].request.headers["from"] == "erin@example.com"

    choose(bot, more, f"reassign:{incident['id']}", user="U_ERIN", message_ts=card.ts)
    reassign = wait_for(
        lambda: [v["view"] for v in slack.views if v["view"].get("callback_id") == "pagerduty.reassign_form"]
    )[0]
    both = submit_view(
        bot, reassign, {"person_user": "U_CAROL", "policy_id": "PEP002:Database Escalation"}, "U_ERIN"
    )
    assert both.json()["errors"] == {"person": "Choose one person, or one escalation policy below."}
    slack.users["U_NOVA"] = {
        "name": "nova",
        "real_name": "Nova New",
        "email": "nova@example.com",
        "tz": "UTC",
    }
    nobody = submit_view(bot, reassign, {"person_user": "U_NOVA"}, user="U_ERIN").json()["errors"]["person"]
    assert "has no PagerDuty user (none has the e-mail nova@example.com)" in nobody
    submit_view(bot, reassign, {"person_user": "U_CAROL"}, user="U_ERIN")
    wait_for(
        lambda: "*Assigned to*\nCarol Viewer" in card_text(bot, card), message="reassigned from the modal"
    )

    choose(
        bot,
        find_element(card_of(bot, card).blocks, "pagerduty.more"),
        f"priority:{incident['id']}",
        user="U_ERIN",
    )
    priority = wait_for(
        lambda: [v["view"] for v in slack.views if v["view"].get("callback_id") == "pagerduty.priority_form"]
    )[0]
    assert submit_view(bot, priority, {}, user="U_ERIN").json()["errors"] == {
        "priority": "Choose a priority."
    }
    submit_view(bot, priority, {"priority_id": "PPRIO01:P1"}, user="U_ERIN")
    wait_for(lambda: "*Priority*\nP1" in card_text(bot, card), message="priority from the modal")

    click(
        bot,
        find_button(card_of(bot, card).blocks, "pagerduty.acknowledge"),
        user="U_ERIN",
        message_ts=card.ts,
    )
    snooze = wait_for(
        lambda: (
            find_element(card_of(bot, card).blocks, "pagerduty.snooze")
            if "Acknowledged" in card_text(bot, card)
            else None
        )
    )
    assert [o["text"]["text"] for o in snooze["options"]] == [
        "Snooze 1 hour",
        "Snooze 4 hours",
        "Snooze 24 hours",
    ]
    choose(bot, snooze, f"1h:{incident['id']}", user="U_ERIN", message_ts=card.ts)
    wait_for(lambda: "Snoozed until" in card_text(bot, card), message="snoozed from the menu")
    assert pd.calls_named("POST /incidents/{id}/snooze")[-1].request.json() == {"duration": 3600}
    choose(
        bot,
        find_element(card_of(bot, card).blocks, "pagerduty.more"),
        f"urgency-low:{incident['id']}",
        user="U_ERIN",
    )
    wait_for(lambda: "*Urgency*\nLow" in card_text(bot, card), message="urgency from the menu")
    assert "Make it high urgency" in str(find_element(card_of(bot, card).blocks, "pagerduty.more"))


def test_changes_made_in_pagerduty_itself_edit_the_card_and_add_a_thread_line(bot):
    pd, pd_api = bot.emulator("pagerduty"), bot.services.adapter("pagerduty")
    incident, card = open_incident(bot, "Replica lag on rds-7")
    alice = "alice@example.com"
    pd_api.change_incident(
        incident["id"], {"assignments": [{"assignee": {"id": "PCAROL", "type": "user_reference"}}]}, alice
    )
    wait_for(lambda: "*Assigned to*\nCarol Viewer" in card_text(bot, card), message="reassigned in PagerDuty")
    pd_api.change_incident(incident["id"], {"escalation_level": 3}, alice)
    wait_for(lambda: "*Assigned to*\nErin SRE" in card_text(bot, card), message="escalated in PagerDuty")
    pd_api.change_incident(
        incident["id"], {"priority": {"id": "PPRIO03", "type": "priority_reference"}}, alice
    )
    wait_for(lambda: "*Priority*\nP3" in card_text(bot, card), message="priority changed in PagerDuty")
    pd_api.add_note(incident["id"], "failing over to the standby", from_email=alice)
    wait_for(lambda: any("failing over to the standby" in t for t in thread(bot, card)), message="the note")
    pd_api.update_incident(incident["id"], "acknowledged", from_email=alice)
    wait_for(lambda: ":eyes: Acknowledged" in card_text(bot, card), message="acknowledged in PagerDuty")
    pd_api.snooze_incident(incident["id"], 3600, from_email=alice)  # no webhook: the card cannot know yet
    assert pd.end_snooze(incident["id"])
    wait_for(lambda: ":rotating_light: Triggered" in card_text(bot, card), message="the snooze ended")
    wait_for(lambda: len(thread(bot, card)) == 6, message="six thread lines")
    lines = thread(bot, card)
    assert "*Alice Admin* reassigned the incident to Carol Viewer." in lines
    assert "*Alice Admin* escalated the incident to Erin SRE." in lines
    assert "*Alice Admin* changed the priority to P3." in lines
    assert "*Alice Admin* acknowledged the incident." in lines
    assert "PagerDuty (automation) un-acknowledged the incident (acknowledgement timed out)." in lines
    assert not any("Requested from Slack" in t for t in lines)  # nobody asked from Slack


def test_escalating_an_acknowledged_snoozed_incident_puts_it_back_to_triggered_on_the_card(bot):
    pd = bot.emulator("pagerduty")
    incident, card = open_incident(bot, "Stale DNS on edge-4")
    label = f"#{incident['number']}"
    slash(bot, "/incident", f"ack {label}", user="U_BOB")
    wait_for(lambda: "Acknowledged" in card_text(bot, card), message="acknowledged")
    slash(bot, "/incident", f"snooze {label} 1h", user="U_BOB")
    wait_for(lambda: "Snoozed until" in card_text(bot, card), message="snoozed")
    slash(bot, "/incident", f"escalate {label}", user="U_BOB")
    wait_for(lambda: "*Assigned to*\nBob Operator" in card_text(bot, card), message="escalated")
    settled(bot)
    assert pd.incidents[incident["id"]]["status"] == "triggered"
    assert pd.incidents[incident["id"]]["pending_actions"] == []
    shown = card_text(bot, card)
    assert ":rotating_light: Triggered" in shown and "Snoozed until" not in shown
    find_button(card_of(bot, card).blocks, "pagerduty.acknowledge")  # the new level acknowledges


def test_someone_without_a_pagerduty_user_acts_as_the_bot_and_a_note_names_them(bot):
    pd, slack = bot.emulator("pagerduty"), bot.emulator("slack")
    slack.users["U_NOVA"] = {
        "name": "nova",
        "real_name": "Nova New",
        "email": "nova@example.com",
        "tz": "UTC",
    }
    incident, card = open_incident(bot, "Queue backlog on mns-orders")
    slash(bot, "/incident", f"escalate {incident['id']}", user="U_NOVA")
    wait_for(lambda: pd.incidents[incident["id"]]["escalation_level"] == 2, message="escalated")
    assert pd.calls_named("PUT /incidents/{id}")[-1].request.headers["from"] == "oncall-bot@example.com"
    [note] = wait_for(lambda: pd.notes.get(incident["id"]), message="the note naming Nova")
    assert (
        note["content"]
        == "The incident was escalated to level 2 from Slack by Nova New, who has no PagerDuty user."
    )
    wait_for(
        lambda: any(
            "*ChatOps Bot* escalated" in t and "<@U_NOVA>; no PagerDuty user" in t for t in thread(bot, card)
        )
    )
    slash(bot, "/incident", f"note {incident['id']} on it", user="U_NOVA")
    wait_for(lambda: len(pd.notes[incident["id"]]) == 2, message="Nova's note")
    assert pd.notes[incident["id"]][1]["content"] == "on it\n\n— Nova New, from Slack"  # one note, signed
    said(bot, "U_NOVA", "(you have no PagerDuty user with your Slack e-mail)")


def test_bad_input_is_refused_with_a_reason_and_changes_nothing(bot):
    pd = bot.emulator("pagerduty")
    incident, card = open_incident(bot, "Certificate expiry on slb-3")
    label = f"#{incident['number']}"
    puts = len(pd.calls_named("PUT /incidents/{id}"))

    def answer(text: str, user: str = "U_BOB") -> str:
        resp = slash(bot, "/incident", text, user=user)
        assert resp.status == 200 and "Traceback" not in resp.text
        return resp.json()["text"]

    assert "No PagerDuty user matches `mallory`" in answer(f"reassign {label} mallory")
    assert "No PagerDuty user has the e-mail mallory@example.com" in answer(
        f"reassign {label} mallory@example.com"
    )
    assert "No escalation policy matches `payments`" in answer(f"reassign {label} policy payments")
    assert "is not one of this account's priorities" in answer(f"priority {label} P9")
    assert "Urgency is `high` or `low`" in answer(f"urgency {label} medium")
    assert "Snooze for how long?" in answer(f"snooze {label} 2d")
    assert "not an escalation level" in answer(f"escalate {label} top")
    assert "The note is empty" in answer(f"note {label}")
    assert "a command takes at most 4,096" in answer(f"note {label} " + "x" * 5000)
    assert "not a PagerDuty incident id" in answer("escalate what?")

    answer(f"escalate {label} 4")
    said(bot, "U_BOB", "there is no level 4 to escalate to")
    answer("escalate QNOSUCH123")
    said(bot, "U_BOB", "PagerDuty has no incident `QNOSUCH123`")
    answer(f"urgency {label} high")
    said(bot, "U_BOB", "is already set to high urgency")
    assert len(pd.calls_named("PUT /incidents/{id}")) == puts and pd.notes.get(incident["id"]) is None

    carol = answer(f"escalate {label}", user="U_CAROL")
    assert "You are not allowed to run `incident.escalate`" in carol
    more = find_element(card.blocks, "pagerduty.more")
    choose(bot, more, f"escalate:{incident['id']}", user="U_CAROL", message_ts=card.ts)
    said(bot, "U_CAROL", "not allowed")
    forged = {
        **more,
        "options": [{"text": {"type": "plain_text", "text": "x"}, "value": "escalate:../services/Q1"}],
    }
    choose(bot, forged, "escalate:../services/Q1", user="U_BOB", message_ts=card.ts)
    said(bot, "U_BOB", "does not name a PagerDuty incident")
    settled(bot)
    assert len(pd.calls_named("PUT /incidents/{id}")) == puts

    answer(f"urgency {label} low")
    wait_for(lambda: "*Urgency*\nLow" in card_text(bot, card), message="low urgency")
    answer(f"escalate {label}")
    said(bot, "U_BOB", f"{label} is low urgency; PagerDuty escalates only high-urgency incidents")
    settled(bot)
    assert len(pd.calls_named("PUT /incidents/{id}")) == puts + 1  # the urgency change only
    assert pd.incidents[incident["id"]]["escalation_level"] == 1


WALK = Path(__file__).resolve().parents[2] / "sandbox" / "data" / "pagerduty_walk.script"


def test_the_sandbox_walk_takes_an_incident_from_triggered_to_resolved_from_slack(tmp_path):
    proc = run_sandbox_script(tmp_path, WALK, timeout=240, env={"SANDBOX_PLANNED_WORK_DELAY": "3600"})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert "0 failed step(s)" in out
    assert (
        out.count("[#ops] chatops:\n    :rotating_light: *#1 Checkout errors on the web tier") == 1
    )  # one card
    for line in (
        "*Bob Operator* reassigned the incident to the escalation policy Database Escalation.",
        "*Bob Operator* escalated the incident to Bob Operator.",
        "*Bob Operator* added a note:",
        "*Bob Operator* acknowledged the incident.",
        "*Bob Operator* snoozed the incident for 4 hours.",
        "*Bob Operator* changed the priority to P2.",
        "*Bob Operator* resolved the incident.",
    ):
        assert f"[#ops] chatops (in thread):\n    {line}" in out
    assert "(bob clicked [5] Escalate to the next level of message 1)" in out
    assert "(bob clicked [4] Snooze 4 hours of message 1)" in out
