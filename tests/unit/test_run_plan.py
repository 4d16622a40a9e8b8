"""`/ecs run` parsing and planning (handlers.ecs.run_plan) and the run model (bot.run_model). Pure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.ecs_model import InstanceInfo
from bot.errors import UserError
from bot.render import escape
from bot.run_model import InstanceRun, counts, group_outputs, plain_error, unslack
from bot.selectors import SelectorError
from handlers.ecs.run_plan import (
    RunPlan,
    build_run_plan,
    check_content,
    choose_type,
    parse_run_args,
)


def test_the_command_after_the_dashes_is_taken_as_typed():
    r = parse_run_args("tag:env=dev --timeout 30 --user admin --dir /tmp -- df -h / | grep -v tmpfs -- x")
    assert r.selector.tags == (("env", "dev"),)
    assert r.command == "df -h / | grep -v tmpfs -- x"
    assert (r.timeout, r.user, r.directory, r.type) == (30, "admin", "/tmp", None)


def test_slacks_escaping_is_undone():
    r = parse_run_args(
        "name:web-* -- curl -s <http://example.com/health|example.com/health> &amp;&amp; echo &lt;ok&gt;"
    )
    assert r.command == "curl -s example.com/health && echo <ok>"
    assert unslack("wget <https://x.test/a?b=1&amp;c=2>") == "wget https://x.test/a?b=1&c=2"


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_unslack_undoes_what_slack_escapes(text):
    assert unslack(escape(text)) == text


def test_a_template_with_its_parameters():
    r = parse_run_args("tag:role=db template disk-usage path=/var/lib/mysql")
    assert (r.template, r.params, r.command) == ("disk-usage", {"path": "/var/lib/mysql"}, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tag:env=dev", "Put the command after ` -- `"),
        ("tag:env=dev --   ", "empty"),
        ("-- uptime", "Say which instances"),
        ("tag:env=dev --type zsh -- uptime", "use shell, bat or powershell"),
        ("tag:env=dev --timeout 0 -- uptime", "from 1 to 86400"),
        ("tag:env=dev --timeout soon -- uptime", "from 1 to 86400"),
        ("tag:env=dev --user 'a b' -- uptime", "is not a user name"),
        ("tag:env=dev --verbose -- uptime", "is not an option"),
        ("tag:env=dev template", "Name the template"),
        ("tag:env=dev template t path", "is not KEY=VALUE"),
    ],
)
def test_bad_command_lines_say_why(text, message):
    with pytest.raises(SelectorError) as caught:
        parse_run_args(text)
    assert message in caught.value.message


def linux(n, status="Running"):
    return InstanceInfo(f"i-l{n}", f"web-{n}", status, os_type="linux")


def windows(n, status="Running"):
    return InstanceInfo(f"i-w{n}", f"win-{n}", status, os_type="windows")


def test_the_type_follows_the_os_and_a_mix_is_refused_with_the_counts():
    assert choose_type(None, [linux(1), linux(2)]) == "shell"
    assert choose_type(None, [windows(1)]) == "powershell"
    assert choose_type("bat", [linux(1), windows(1)]) == "bat"
    with pytest.raises(UserError) as caught:
        choose_type(None, [linux(1), linux(2), windows(1)])
    assert "2 Linux and 1 Windows" in caught.value.message and "--type shell" in caught.value.message


def test_content_limits():
    check_content("x" * 100, 16384)
    with pytest.raises(UserError, match="the policy allows 100"):
        check_content("x" * 101, 100)
    with pytest.raises(UserError, match="once Base64-encoded"):
        check_content("x" * 20000, 24 * 1024)  # 26,668 bytes in Base64


def plan(instances, agents, kind="shell") -> RunPlan:
    return build_run_plan(
        parse_run_args("tag:env=dev -- uptime"),
        "uptime",
        kind,
        60,
        instances,
        agents,
        plan_id="p1",
        region="cn-hangzhou",
        requester="U1",
        channel="C1",
        now=100.0,
        ttl_seconds=600,
    )


def test_instances_that_cannot_run_it_are_left_out_and_say_why():
    fleet = [linux(1), linux(2, "Stopped"), linux(3), windows(1)]
    p = plan(fleet, {"i-l1": True, "i-l3": False, "i-w1": True})
    assert p.target_ids == ["i-l1"]
    why = {i.instance_id: reason for i, reason in p.skipped}
    assert why == {
        "i-l2": "Stopped: not running",
        "i-l3": "Cloud Assistant agent is not running",
        "i-w1": "Windows: a shell command does not run there",
    }
    assert RunPlan.from_dict(p.as_dict()) == p


def test_batches_of_100_with_a_stable_client_token_each():
    p = plan([linux(n) for n in range(250)], {f"i-l{n}": True for n in range(250)})
    assert [len(b) for b in p.batches()] == [100, 100, 50]
    tokens = [p.client_token(n) for n in range(3)]
    assert len(set(tokens)) == 3 and all(len(t) <= 64 and t.isascii() for t in tokens)
    assert tokens == [RunPlan.from_dict(p.as_dict()).client_token(n) for n in range(3)]
    assert p.permission == "ecs.run"


def test_counts_put_failures_first_and_outputs_group_identical_text():
    runs = [
        InstanceRun("a", "Success", 0, output="ok\n"),
        InstanceRun("b", "Success", 0, output="ok"),
        InstanceRun("c", "Failed", 2, "ExitCodeNonzero", output="boom"),
        InstanceRun("d", "Success", 0, output="other"),
    ]
    assert counts(runs) == [("Failed", 1), ("Success", 3)]
    assert group_outputs([r for r in runs if r.ok]) == [("ok", ["a", "b"]), ("other", ["d"])]
    assert plain_error("ClientNotRunning") == "Cloud Assistant agent is not running"
    assert plain_error("Weird", "something") == "something"


def test_slacks_escaping_is_undone_in_template_parameters_too():
    r = parse_run_args("tag:env=dev template fetch url=<https://x.test/a?b=1&amp;c=2> q=&lt;b&gt;")
    assert r.params == {"url": "https://x.test/a?b=1&c=2", "q": "<b>"}
