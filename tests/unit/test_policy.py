from pathlib import Path

import pytest

from bot.authz import Actor, Authorizer
from bot.errors import ConfigError, Forbidden
from bot.policy import Policy, load_policy, permission_matches
from bot.registry import Registry
from bot.store import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_example_and_sandbox_policies_are_valid():
    example = load_policy(ROOT / "policy.example.yaml", Registry.discover())  # with capabilities' sections
    assert "operators" in example.roles and example.calendars
    sandbox = load_policy(ROOT / "sandbox" / "data" / "policy.yaml", Registry.discover())
    assert "S_SRE" in sandbox.roles["sre"].groups and sandbox.approvals


def test_no_file_and_empty_file_give_the_default_policy(tmp_path):
    assert load_policy(None) == Policy()
    empty = tmp_path / "p.yaml"
    empty.write_text("")
    assert load_policy(empty) == Policy()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("roles:\n  ops:\n    members: [U1]\n    permissions: ['ECS STOP']\n", "roles.ops.permissions"),
        ("confirmation:\n  ttl_seconds: 5\n", "confirmation.ttl_seconds"),
        ("unknown_section: 1\n", "unknown_section"),
        ("ecs:\n  batch_concurrency: zero\n", "ecs.batch_concurrency"),
        ("- a\n- b\n", "top level"),
        ("roles: [\n", "invalid policy file"),
    ],
)
def test_invalid_policy_names_the_field(tmp_path, text, field):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert field in str(info.value) and "\n" not in str(info.value)


def test_missing_policy_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_policy(tmp_path / "nope.yaml")


def test_permission_wildcards():
    assert permission_matches({"ecs.*"}, "ecs.stop")
    assert permission_matches({"*"}, "incident.ack")
    assert not permission_matches({"ecs.list"}, "ecs.stop")
    assert not permission_matches({"ecs.*"}, "incident.ack")


def test_authorizer_reads_by_default_roles_for_changes_and_audits_everything(tmp_path):
    policy = Policy.model_validate(
        {"roles": {"ops": {"members": ["U_OP"], "permissions": ["ecs.stop"], "channels": ["C_OPS"]}}}
    )
    store = SQLiteStore(tmp_path / "s.db")
    authz = Authorizer(policy, ("U_ADMIN",), store)
    assert authz.allowed(Actor("U_ANY"), "ecs.list")
    assert not authz.allowed(Actor("U_ANY", "C_OPS"), "ecs.stop")
    assert authz.allowed(Actor("U_OP", "C_OPS"), "ecs.stop")
    assert not authz.allowed(Actor("U_OP", "C_DEV"), "ecs.stop")  # role limited to a channel
    assert authz.allowed(Actor("U_ADMIN", "C_DEV"), "anything.at_all")
    authz.authorize(Actor("U_OP", "C_OPS"), "ecs.stop", ["i-1"], detail="stop i-1")
    with pytest.raises(Forbidden):
        authz.authorize(Actor("U_ANY", "C_OPS"), "ecs.stop", ["i-2"])
    records = authz.recent(10)
    assert [(r.who, r.decision, r.targets) for r in records] == [
        ("U_ANY", "deny", ["i-2"]),
        ("U_OP", "allow", ["i-1"]),
    ]
    assert records[0].channel == "C_OPS" and records[0].time > 0


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (
            "schedules:\n  office:\n    periods: [{days: mon-fri, start: '25:00', stop: '21:00'}]\n",
            "schedules.office.periods[0].start",
        ),
        (
            "schedules:\n  office:\n    timezone: Mars/Olympus\n    periods: [{days: mon-fri, start: '09:00'}]\n",
            "schedules.office.timezone",
        ),
        (
            "schedules:\n  office:\n    periods: [{days: funday, start: '09:00'}]\n",
            "schedules.office.periods[0].days",
        ),
        ("schedules:\n  office:\n    periods: []\n", "schedules.office.periods"),
        ("schedule_override_max_days: 90\n", "schedule_override_max_days"),
    ],
)
def test_a_bad_schedule_stops_start_up_naming_the_field(tmp_path, text, field):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_policy(path, Registry.discover())
    assert field in str(err.value)
