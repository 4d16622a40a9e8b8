"""A lifecycle trail says who asked the bot for a change, as `/ecs status` does."""

from __future__ import annotations

import datetime as dt

from bot.intents import Intent, caused_by
from handlers.events.history import describe_entry
from handlers.events.stored import HistoryEntry


def test_an_intent_explains_the_states_its_action_leads_to():
    stop = Intent("stop", "command", "U_ALICE", 1000.0)
    assert caused_by(stop, "Stopping", 1001.0) == "stop by <@U_ALICE>"
    assert caused_by(stop, "Stopped", 1030.0) == "stop by <@U_ALICE>"
    assert caused_by(stop, "Running", 1030.0) is None  # not what a stop leads to
    assert caused_by(stop, "Stopped", 900.0) is None  # happened before the bot was asked
    assert caused_by(Intent("start", "schedule", "office-hours", 0.0), "Running", 5.0) == (
        "start by schedule office-hours"
    )
    assert caused_by(Intent("start", "auto-restart", None, 0.0), "Starting", 5.0) == "start by auto-restart"
    assert caused_by(None, "Stopped", 5.0) is None


def test_the_trail_line_names_who_asked():
    entry = HistoryEntry(t=0.0, e="Instance:StateChange", s="Stopped", o="Stopping", by="stop by <@U_ALICE>")
    assert describe_entry(entry, dt.UTC).endswith("Stopping → Stopped  (stop by <@U_ALICE>)")
    plain = HistoryEntry(t=0.0, e="Instance:StateChange", s="Stopped", o="Stopping")
    assert describe_entry(plain, dt.UTC).endswith("Stopping → Stopped")
    old = {"t": 0.0, "e": "Instance:StateChange", "s": "Running"}  # stored before `by` existed
    assert describe_entry(old, dt.UTC).endswith("→ Running")
