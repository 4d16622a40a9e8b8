"""Pure parts of the ECS-events capability: routing, the auto-restart rule, digests, history lines."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.ecs_model import InstanceInfo
from bot.errors import UserError
from bot.intents import Intent
from bot.policy import Route, VServerGroupRef
from handlers.events.digest import DigestView, entry
from handlers.events.envelope import EcsEvent
from handlers.events.history import describe_entry, parse_history_args
from handlers.events.interruption import group_selects
from handlers.events.notifier import rerouted
from handlers.events.render import Notice, quarantine_notice, state_notice
from handlers.events.restart_policy import decide_restart
from handlers.events.routing import channels_for, route_matches

TZ = ZoneInfo("Europe/Berlin")
WHEN = dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC)


def event(name="Instance:StateChange", state="Stopped", region="cn-hangzhou", iid="i-1") -> EcsEvent:
    return EcsEvent("e1", name, iid, region, WHEN, state=state)


# routing -----------------------------------------------------------------------------------------------


def test_every_matching_route_gets_the_event_once_and_the_default_only_when_none_matches():
    routes = [
        Route(channel="C_DEV", tags={"env": "dev"}),
        Route(channel="C_ALERTS", events=("Instance:Preemptible*",)),
        Route(channel="C_STOPS", states=("stopped",)),
        Route(channel="C_DEV", regions=("cn-hangzhou",)),
    ]
    assert channels_for(event(), {"env": "dev"}, routes, "C_OPS") == ("C_DEV", "C_STOPS")
    assert channels_for(event(state="Running", region="cn-beijing"), {}, routes, "C_OPS") == ("C_OPS",)
    assert channels_for(
        event(name="Instance:PreemptibleInstanceInterruption", state=None), {}, routes, None
    ) == (
        "C_ALERTS",
        "C_DEV",
    )
    assert channels_for(event(region="x"), {"env": "prod"}, [routes[0]], None) == ()


def test_route_with_states_never_matches_other_events_and_tag_wildcard():
    assert not route_matches(
        Route(channel="C", states=("Stopped",)), event(name="Instance:X", state=None), {}
    )
    assert route_matches(Route(channel="C", tags={"team": "*"}), event(), {"team": "pay"})
    assert not route_matches(Route(channel="C", tags={"team": "*"}), event(), {})


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["env", "app", "team"]), st.sampled_from(["a", "b"]), max_size=3),
    st.lists(st.sampled_from(["C1", "C2", "C3"]), max_size=4),
)
def test_channels_are_unique_and_never_empty_with_a_default(tags, channels):
    routes = [Route(channel=c, tags={"env": "a"} if i % 2 else {}) for i, c in enumerate(channels)]
    found = channels_for(event(), tags, routes, "C_DEFAULT")
    assert found and len(found) == len(set(found))


# auto-restart ------------------------------------------------------------------------------------------

BASE = dict(
    enabled=True,
    state="Stopped",
    tags={"auto-restart": "true"},
    selector={"auto-restart": "true"},
    intent=None,
    maintenance=None,
    interrupted=False,
    event_age_seconds=5.0,
    max_event_age_seconds=900,
    restarts_last_hour=0,
    max_per_hour=3,
)


def decide(**changes):
    return decide_restart(**{**BASE, **changes})


def test_unexpected_stop_of_a_selected_instance_restarts():
    d = decide()
    assert d.restart and "1 of at most 3" in d.reason
    assert decide(current_status="Stopped").restart


@pytest.mark.parametrize(
    ("changes", "action", "words"),
    [
        ({"state": "Running"}, "ignore", ""),
        ({"tags": {"auto-restart": "false"}}, "ignore", ""),
        ({"tags": None}, "ignore", ""),
        ({"enabled": False}, "ignore", ""),
        ({"intent": Intent("stop", "command", "U_BOB", 0)}, "skip", "<@U_BOB>"),
        ({"intent": Intent("stop", "schedule", "office-hours", 0)}, "skip", "schedule office-hours"),
        ({"intent": Intent("reboot", "command", "U_BOB", 0)}, "skip", "/ecs reboot"),
        (
            {"maintenance": {"event": "SystemMaintenance.Reboot", "status": "Scheduled"}},
            "skip",
            "SystemMaintenance",
        ),
        ({"interrupted": True}, "skip", "reclaimed"),
        ({"event_age_seconds": 3600}, "skip", "60 minutes ago"),
        ({"restarts_last_hour": 3}, "skip", "limit 3"),
        ({"current_status": "Running"}, "skip", "Running now"),
    ],
)
def test_guards(changes, action, words):
    d = decide(**changes)
    assert d.action == action and words in d.reason


def test_an_earlier_start_intent_does_not_block_a_restart():
    assert decide(intent=Intent("start", "command", "U_BOB", 0)).restart


# SLB group selection -----------------------------------------------------------------------------------


def test_vserver_group_selection():
    assert group_selects(VServerGroupRef(id="rsp-1", tags={"env": "prod"}), "i-1", {"env": "prod"})
    assert not group_selects(VServerGroupRef(id="rsp-1", tags={"env": "prod"}), "i-1", {"env": "dev"})
    assert group_selects(VServerGroupRef(id="rsp-1", instance_ids=("i-1",)), "i-1", {})
    assert not group_selects(VServerGroupRef(id="rsp-1", instance_ids=("i-2",)), "i-1", {})
    assert group_selects(VServerGroupRef(id="rsp-1"), "i-1", {})


# rendering ---------------------------------------------------------------------------------------------


def test_state_notice_reads_well_and_uses_the_team_zone():
    facts = InstanceInfo("i-1", name="web-1", tags={"env": "prod"})
    n = state_notice(event(), facts, "Running", TZ, restart=(False, "stopped on purpose by <@U_BOB>"))
    assert n.text == "web-1 (i-1) Running → Stopped — auto-restart skipped: stopped on purpose by <@U_BOB>"
    assert n.urgent and n.state == "Stopped"
    flat = json.dumps(n.blocks)
    assert "2026-03-29 01:30:00 CET" in flat and "env=prod" in flat  # before the DST switch at 02:00 local
    assert "Running → *Stopped*" in n.line


# digests -----------------------------------------------------------------------------------------------


def test_digest_counts_each_entry_once_and_attaches_a_file_beyond_the_inline_lines():
    view = DigestView("d1", started=WHEN.timestamp(), inline=3)
    notices = [
        state_notice(event(iid=f"i-{n % 4}", state="Stopped" if n % 2 else "Running"), None, None, TZ)
        for n in range(10)
    ]
    for seq, n in enumerate(notices, start=1):
        assert view.add(seq, entry(n.as_dict()), WHEN.timestamp())
    assert not view.add(5, entry(notices[4].as_dict()), WHEN.timestamp())  # replay after a takeover
    assert view.count == 10 and len(view.instances) == 4 and view.by_what == {"Running": 5, "Stopped": 5}
    text, blocks = view.render(TZ, final=True, channel="C_OPS")
    assert "10 events on 4 instances" in text and view.needs_file()
    assert "ecs-events-C_OPS-d1.txt" in json.dumps(blocks)
    body = view.file_text([entry(n.as_dict()) for n in notices])
    assert body.count("\n") == 11 and "i-3" in body


def test_small_final_digest_lists_everything_inline():
    view = DigestView("d2", started=WHEN.timestamp(), inline=5)
    for seq in range(1, 4):
        view.add(seq, entry(state_notice(event(iid=f"i-{seq}"), None, None, TZ).as_dict()), WHEN.timestamp())
    _, blocks = view.render(TZ, final=True, channel="C")
    assert "*All 3 events*" in json.dumps(blocks) and not view.needs_file()


# history -----------------------------------------------------------------------------------------------


def test_history_arguments():
    assert parse_history_args("i-abc", 30).days == 7
    assert parse_history_args("web-1 3d", 30) == parse_history_args("web-1 3", 30)
    for bad in ("", "a b c", "web-1 x", "web-1 0", "web-1 31"):
        with pytest.raises(UserError) as err:
            parse_history_args(bad, 30)
        assert err.value.usage


def test_history_lines():
    t = WHEN.timestamp()
    assert (
        describe_entry({"t": t, "s": "Stopped", "o": "Running"}, TZ)
        == "2026-03-29 01:30:00  Running → Stopped"
    )
    line = describe_entry(
        {"t": t, "e": "Instance:SystemMaintenance.Reboot:Scheduled", "st": "Scheduled", "nb": t}, TZ
    )
    assert line.endswith("SystemMaintenance.Reboot Scheduled, not before 2026-03-29 01:30")
    line = describe_entry({"t": t, "e": "Instance:PreemptibleInstanceInterruption", "outcome": "removed"}, TZ)
    assert line.endswith("preemptible interruption: removed")


def test_a_quarantined_message_is_quoted_inert_a_mention_in_it_pings_nobody():
    body = "not JSON: <!channel> <@U1> &amp; <https://x|y>"
    notice = quarantine_notice("m-<1>", 3, "bad body near `<!here>`", body)
    shown = json.dumps(notice.blocks) + notice.text
    for raw in ("<!channel>", "<@U1>", "<!here>", "<https://x|y>", "m-<1>"):
        assert raw not in shown
    assert "&lt;!channel&gt; &lt;@U1&gt; &amp;amp; &lt;https://x|y&gt;" in json.dumps(notice.blocks)


def test_a_rerouted_notice_says_where_it_was_meant_to_go_and_stays_within_fifty_blocks():
    full = Notice(
        text="i-1 → Stopped", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}] * 50
    )
    moved = rerouted(full, "C_DEV", "is_archived")
    assert len(moved.blocks) == 50
    assert moved.blocks[-1]["elements"][0]["text"] == "(meant for <#C_DEV>, which answered `is_archived`)"
    assert moved.text == "i-1 → Stopped (meant for <#C_DEV>, which answered `is_archived`)"
    small = rerouted(Notice(text="t", blocks=full.blocks[:3]), "C_DEV", "is_archived")
    assert small.blocks[:3] == full.blocks[:3] and len(small.blocks) == 4
    assert rerouted(Notice(text="t"), "C_X", "channel_not_found").blocks == []
