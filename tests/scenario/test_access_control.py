"""Scopes, caps and two-person approval through the real entry points: signed Slack requests into the
running app, the real ECS SDK against the emulator, a real Redis, the worker running the jobs."""

from __future__ import annotations

import copy
import threading

import pytest

from bot.clock import ManualClock
from bot.pipeline.approvals import APPROVE_ACTION, DENY_ACTION, expire_requests
from sandbox import credentials
from tests.support import answers_since, click, find_button, press_for_answer, slash, wait_for

CONFIRM = "plan.confirm"
POLICY = """
roles:
  developers:
    members: [U_DAVE]
    permissions: [ecs.start, ecs.stop]
    scopes: ["tag:env=dev"]
    max_instances: {ecs.stop: 20}
  sre:
    members: [U_BOB, U_ERIN]
    permissions: ["ecs.*", approve]
  scoped-approver:
    members: [U_CAROL]
    permissions: [approve]
    scopes: ["tag:env=dev"]
approvals:
  - selector: "tag:env=prod"
    actions: [ecs.stop, ecs.reboot]
    channel: C_APPROVALS
    ttl_seconds: 600
"""


def start_bot(make_bot, redis_url, tmp_path, policy: str = POLICY, clock=None):
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    bot = make_bot(
        redis_url=redis_url, emulators=["slack", "ecs"], env={"CHATOPS_CONFIG": str(path)}, clock=clock
    )
    bot.emulator("ecs").transition_seconds = 0.2
    return bot


@pytest.fixture
def bot(make_bot, redis_url, tmp_path):
    return start_bot(make_bot, redis_url, tmp_path)


def instance_named(bot, name: str) -> str:
    ecs = bot.emulator("ecs")
    return next(i for i, x in ecs.instances.items() if x["InstanceName"] == name)


def running_prod_web(bot) -> tuple[str, str]:
    ecs = bot.emulator("ecs")
    for iid, x in sorted(ecs.instances.items(), key=lambda kv: kv[1]["InstanceName"]):
        tags = x["Tags"]
        if (
            tags.get("env") == "prod"
            and x["Status"] == "Running"
            and x["RegionId"] == credentials.REGION_ID
            and x["InstanceName"].startswith("prod-web-")
        ):
            return x["InstanceName"], iid
    raise AssertionError("no running prod web instance in the emulator")


def stop_calls(bot, iid: str) -> int:
    calls = bot.emulator("ecs").calls_named("StopInstances")
    return sum(1 for c in calls if iid in str(c))


def approval_message(bot, fragment: str = "Approval needed"):
    """A copy of the newest message in #approvals with `fragment` (the emulator edits its own)."""
    found = wait_for(
        lambda: next(
            (
                m
                for m in reversed(bot.emulator("slack").channel_messages("C_APPROVALS"))
                if fragment in m.text
            ),
            None,
        ),
        10,
        message=f"a message with {fragment!r} in #approvals",
    )
    return copy.deepcopy(found)


def press(bot, button: dict, user: str, channel: str = "C_APPROVALS", message_ts: str | None = None) -> str:
    return press_for_answer(bot, button, user, channel, message_ts)


def request_prod_stop(bot, user: str = "U_BOB"):
    name, iid = running_prod_web(bot)
    answer = slash(bot, "/ecs", f"stop {name}", user=user).json()
    waiting = press(bot, find_button(answer["blocks"], CONFIRM), user=user, channel="C_OPS")
    message = approval_message(bot)
    return name, iid, waiting, message


def test_a_developer_stops_dev_instances_alone_but_never_prod(bot):
    answer = slash(bot, "/ecs", "stop tag:env=dev", user="U_DAVE").json()
    find_button(answer["blocks"], CONFIRM)  # allowed: every target is in the role's scope

    name, iid = running_prod_web(bot)
    refused = slash(bot, "/ecs", f"stop {name}", user="U_DAVE").json()
    assert "only instances matching `tag:env=dev` (role developers)" in refused["text"]
    assert name in refused["text"] and iid in refused["text"]
    assert "blocks" not in refused or CONFIRM not in str(refused.get("blocks"))

    mixed = slash(bot, "/ecs", "stop tag:app=web", user="U_DAVE").json()  # dev and prod web servers
    assert "outside:" in mixed["text"] and "Nothing was changed" in mixed["text"]
    assert not bot.emulator("ecs").calls_named("StopInstances")
    denied = [r for r in bot.services.authz.recent(10) if r.who == "U_DAVE" and r.decision == "deny"]
    assert denied and all(r.rule == "scope of role developers" for r in denied)
    assert iid in denied[-1].targets


def test_a_role_cap_refuses_a_larger_change_before_any_preview(make_bot, redis_url, tmp_path):
    bot = start_bot(make_bot, redis_url, tmp_path, POLICY.replace("{ecs.stop: 20}", "{ecs.stop: 2}"))
    refused = slash(bot, "/ecs", "stop tag:env=dev", user="U_DAVE").json()
    assert "at most 2 instances at once" in refused["text"]
    record = next(r for r in bot.services.authz.recent(5) if r.who == "U_DAVE")
    assert (record.decision, record.rule) == ("deny", "max_instances of role developers")


def test_a_prod_stop_waits_for_a_second_sre_and_runs_once_approved(bot):
    name, iid, waiting, message = request_prod_stop(bot)
    assert "Approval requested in <#C_APPROVALS>" in waiting
    assert "<@U_BOB>" in message.text and name in str(message.blocks)
    assert stop_calls(bot, iid) == 0  # nothing runs before a second person approves

    approve = find_button(message.blocks, APPROVE_ACTION)
    assert "someone else who holds `approve` must approve it" in press(bot, approve, "U_BOB")
    assert "not allowed to run `approve`" in press(bot, approve, "U_DAVE")
    assert "outside:" in press(bot, approve, "U_CAROL")  # holds `approve` for dev instances only
    assert stop_calls(bot, iid) == 0  # refused clicks do not use the request up

    assert "Approved by <@U_ERIN>" in press(bot, approve, "U_ERIN", message_ts=message.ts)
    report = wait_for(
        lambda: next(
            (m for m in bot.emulator("slack").channel_messages("C_OPS") if "Stopped 1 of 1" in m.text), None
        ),
        30,
        message="the report in the requester's channel",
    )
    context = str(report.blocks)
    assert "requested by <@U_BOB>" in context and "approved by <@U_ERIN>" in context
    assert stop_calls(bot, iid) == 1
    assert "Approved by <@U_ERIN>" in bot.emulator("slack").message("C_APPROVALS", message.ts).text

    audit = slash(bot, "/ecs", "audit", user="U_BOB").json()
    text = str(audit["blocks"])
    assert "<@U_BOB>" in text and "<@U_ERIN>" in text
    results = [r for r in bot.services.authz.recent(20) if r.what == "ecs.stop" and r.result == "ok"]
    assert results and results[0].who == "U_BOB" and results[0].approver == "U_ERIN"


def test_two_approvers_clicking_at_once_run_the_change_once(bot):
    _name, iid, _waiting, message = request_prod_stop(bot)
    button = find_button(message.blocks, APPROVE_ACTION)
    start, seq = threading.Barrier(3, timeout=30), bot.emulator("slack").last_seq

    def clicker(user: str) -> None:
        start.wait()
        click(bot, button, user=user, channel="C_APPROVALS")

    threads = [
        threading.Thread(target=clicker, args=(u,), daemon=True) for u in ("U_ERIN", "U_ALICE", "U_ERIN")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    wait_for(lambda: len(answers_since(bot, seq, "C_APPROVALS")) >= 3, 10, message="three answers")
    answers = answers_since(bot, seq, "C_APPROVALS")
    assert sum("Approved by" in a for a in answers) == 1, answers
    assert sum("already approved by" in a for a in answers) == 2, answers
    wait_for(lambda: bot.emulator("ecs").instances[iid]["Status"] == "Stopped", 30, message="the stop")
    assert "already approved by" in press(bot, button, "U_ERIN")  # a replayed payload
    assert stop_calls(bot, iid) == 1


def test_deny_and_withdraw_change_nothing_and_tell_the_requester(bot):
    _name, iid, _w, message = request_prod_stop(bot)
    denied = press(bot, find_button(message.blocks, DENY_ACTION), "U_ERIN", message_ts=message.ts)
    assert "Denied by <@U_ERIN>: nothing was changed" in denied
    told = wait_for(
        lambda: [
            m for m in bot.emulator("slack").channel_messages("C_OPS") if "was denied by <@U_ERIN>" in m.text
        ],
        10,
        message="the requester told",
    )
    assert "<@U_BOB>" in told[0].text
    again = press(bot, find_button(message.blocks, APPROVE_ACTION), "U_ERIN")
    assert "already denied by <@U_ERIN>" in again

    _name, _iid, _w, second = request_prod_stop(bot)
    withdrawn = press(bot, find_button(second.blocks, DENY_ACTION), "U_BOB", message_ts=second.ts)
    assert "Withdrawn by <@U_BOB>" in withdrawn
    assert stop_calls(bot, iid) == 0
    results = {r.result for r in bot.services.authz.recent(30) if r.what == "ecs.stop" and r.result}
    assert {"denied", "withdrawn"} <= results


def test_forged_values_get_a_refusal_and_run_nothing(bot):
    for action, value in ((APPROVE_ACTION, "nonexistent"), (DENY_ACTION, "x" * 500), (APPROVE_ACTION, "")):
        assert "expired or does not exist" in press(bot, {"action_id": action, "value": value}, "U_ERIN")
    assert not bot.emulator("ecs").calls_named("StopInstances")


def prod_stop_on_a_manual_clock(make_bot, redis_url, tmp_path):
    """A bot on a clock that moves only when told, and bob's prod stop waiting for approval."""
    clock = ManualClock(start=1_900_000_000.0)
    bot = start_bot(make_bot, redis_url, tmp_path, clock=clock)
    name, iid = running_prod_web(bot)
    answer = slash(bot, "/ecs", f"stop {name}", user="U_BOB").json()
    press(bot, find_button(answer["blocks"], CONFIRM), "U_BOB", channel="C_OPS")
    return bot, clock, iid, approval_message(bot)


def test_an_approval_request_expires_and_its_message_says_so(make_bot, redis_url, tmp_path):
    bot, clock, iid, message = prod_stop_on_a_manual_clock(make_bot, redis_url, tmp_path)
    approve = find_button(message.blocks, APPROVE_ACTION)

    clock.advance(599)
    expire_requests(bot.services)
    assert "Approval needed" in bot.emulator("slack").message("C_APPROVALS", message.ts).text  # not yet

    clock.advance(2)
    expire_requests(bot.services)
    edited = bot.emulator("slack").message("C_APPROVALS", message.ts)
    assert "Expired: nobody approved within 10 min" in edited.text
    assert "already expired" in press(bot, approve, "U_ERIN")
    assert stop_calls(bot, iid) == 0
    found = bot.services.authz.recent(10)
    assert any(r.result == "expired" for r in found if r.what == "ecs.stop"), [
        (r.what, r.decision, r.result) for r in found
    ]


def test_help_and_app_home_say_what_each_person_may_do_and_where(bot):
    from bot.home import home_view

    dev_help = str(slash(bot, "/ecs", "help", user="U_DAVE").json()["blocks"])
    assert "/ecs stop SELECTOR" in dev_help and "only on `tag:env=dev`" in dev_help
    assert "/ecs reboot SELECTOR" not in dev_help  # not a permission of the developers' role
    assert "needs a second person's approval (Approve / Deny in <#C_APPROVALS>)" in dev_help
    assert "You may approve" not in dev_help
    sre_help = str(slash(bot, "/ecs", "help", user="U_ERIN").json()["blocks"])
    assert "/ecs reboot SELECTOR" in sre_help and "only on" not in sre_help
    assert "Your roles: sre." in sre_help and "You may approve other people's requests." in sre_help
    home = str(home_view(bot.services, "U_CAROL")["blocks"])
    assert "You may approve other people's requests — _only on `tag:env=dev`_." in home


def test_the_audit_result_of_an_approved_change_keeps_ecs_request_ids_and_timing(bot):
    _name, iid, _w, message = request_prod_stop(bot)
    press(bot, find_button(message.blocks, APPROVE_ACTION), "U_ERIN", message_ts=message.ts)
    result = wait_for(
        lambda: next((r for r in bot.services.authz.recent(20) if r.what == "ecs.stop" and r.result), None),
        30,
        message="the audited result",
    )
    assert (result.who, result.approver, result.result) == ("U_BOB", "U_ERIN", "ok")
    assert result.targets == [iid] and result.seconds is not None and result.seconds >= 0
    sent = [
        c.response["RequestId"] for c in bot.emulator("ecs").calls_named("StopInstances") if c.status == 200
    ]
    assert result.request_ids == sent  # the ids ECS answered the change with


def test_a_rule_that_names_its_approvers_takes_no_one_else(make_bot, redis_url, tmp_path):
    policy = POLICY.replace("    ttl_seconds: 600\n", "    ttl_seconds: 600\n    approvers: [sre]\n")
    policy = policy.replace(
        '  scoped-approver:\n    members: [U_CAROL]\n    permissions: [approve]\n    scopes: ["tag:env=dev"]\n',
        "  leads:\n    members: [U_CAROL]\n    permissions: [approve]\n",
    )
    assert "approvers: [sre]" in policy and "leads:" in policy
    bot = start_bot(make_bot, redis_url, tmp_path, policy)
    _name, iid, _w, message = request_prod_stop(bot)
    approve = find_button(message.blocks, APPROVE_ACTION)
    assert "Only members of sre may approve this request" in press(bot, approve, "U_CAROL")
    assert "Approved by <@U_ERIN>" in press(bot, approve, "U_ERIN", message_ts=message.ts)
    refusal = next(r for r in bot.services.authz.recent(20) if r.who == "U_CAROL")
    assert (refusal.what, refusal.decision, refusal.rule) == ("approve", "deny", "approvers")


def test_a_sweep_that_stopped_after_marking_a_request_expired_is_finished_by_the_next(
    make_bot, redis_url, tmp_path
):
    bot, clock, _iid, message = prod_stop_on_a_manual_clock(make_bot, redis_url, tmp_path)
    clock.advance(601)
    plan_id = find_button(message.blocks, APPROVE_ACTION)["value"]
    bot.services.store.set(f"approval:{plan_id}:used", "expired")  # the mark was made, then the worker died
    expire_requests(bot.services)
    assert "Expired: nobody approved" in bot.emulator("slack").message("C_APPROVALS", message.ts).text
    assert any(r.result == "expired" for r in bot.services.authz.recent(10) if r.what == "ecs.stop")
