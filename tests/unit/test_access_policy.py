"""Who may do what where: roles, Slack user groups, scopes, caps and approval rules (pure, with a real
embedded store for the audit trail). A table of cases, then properties over tag sets and selectors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.authz import Actor, Authorizer, Target
from bot.errors import ConfigError, Forbidden
from bot.policy import Policy, load_policy
from bot.registry import Registry
from bot.selectors import Selector, parse_selector
from bot.store import SQLiteStore

POLICY = {
    "roles": {
        "devs": {
            "groups": ["S_DEVS"],
            "permissions": ["ecs.start", "ecs.stop"],
            "scopes": ["tag:env=dev", "name:sandbox-*"],
            "max_instances": {"ecs.stop": 3},
        },
        "sre": {"members": ["U_SRE1", "U_SRE2"], "permissions": ["ecs.*", "approve"]},
        "night-ops": {"members": ["U_NIGHT"], "permissions": ["ecs.reboot"], "channels": ["C_OPS"]},
        "dev-approvers": {"members": ["U_LEAD"], "permissions": ["approve"], "scopes": ["tag:env=dev"]},
    },
    "approvals": [
        {"selector": "tag:env=prod", "actions": ["ecs.stop", "ecs.reboot"]},
        {"min_instances": 5, "actions": ["ecs.start"]},
    ],
}


class Groups:
    def __init__(self, members: dict[str, set[str]]):
        self.members = members
        self.asked: list[tuple[str, str]] = []

    def contains(self, group_id: str, user_id: str) -> bool:
        self.asked.append((group_id, user_id))
        return user_id in self.members.get(group_id, set())


@pytest.fixture
def authz(tmp_path):
    policy = Policy.model_validate(POLICY)
    return Authorizer(
        policy, ("U_ADMIN",), SQLiteStore(tmp_path / "s.db"), groups=Groups({"S_DEVS": {"U_DEV"}})
    )


def inst(env: str | None, n: int = 0, name: str | None = None) -> Target:
    tags = {"env": env} if env else {}
    return Target(f"i-{env or 'none'}{n:04d}", tags, name or f"{env or 'x'}-web-{n:02d}", "cn-hangzhou")


def verdict(
    authz: Authorizer, user: str, permission: str, targets: list[Target], channel: str = "C_OPS"
) -> str:
    decision = authz.decide(Actor(user, channel), permission, targets)
    if not decision.allowed:
        return "deny"
    if any(rule.applies(permission, targets) for rule in authz.policy.approvals):
        return "approval"
    return "allow"


DEV, PROD, STAGING = [inst("dev", 1)], [inst("prod", 1)], [inst("staging", 1)]
CASES = [
    # who, action, targets, channel → outcome
    ("U_DEV", "ecs.stop", DEV, "C_OPS", "allow"),  # a member through the Slack user group
    ("U_DEV", "ecs.stop", PROD, "C_OPS", "deny"),  # outside the scope
    ("U_DEV", "ecs.stop", DEV + PROD, "C_OPS", "deny"),  # partly outside: refused whole
    ("U_DEV", "ecs.stop", [inst(None, 1, "sandbox-7")], "C_OPS", "allow"),  # the second scope (a name glob)
    ("U_DEV", "ecs.stop", [inst("dev", i) for i in range(4)], "C_OPS", "deny"),  # above the role's cap
    ("U_DEV", "ecs.start", [inst("dev", i) for i in range(4)], "C_OPS", "allow"),  # the cap is per action
    ("U_DEV", "ecs.start", [inst("dev", i) for i in range(5)], "C_OPS", "approval"),  # 5+ instances
    ("U_DEV", "ecs.reboot", DEV, "C_OPS", "deny"),  # not a permission of the role
    ("U_DEV", "ecs.list", PROD, "C_OPS", "allow"),  # reading is never scoped
    ("U_SRE1", "ecs.stop", PROD, "C_OPS", "approval"),  # the two-person rule
    ("U_SRE1", "ecs.stop", STAGING, "C_OPS", "allow"),
    ("U_SRE1", "ecs.stop", [inst("dev", i) for i in range(40)], "C_OPS", "allow"),  # no cap on the role
    ("U_SRE1", "approve", PROD, "C_OPS", "allow"),
    ("U_LEAD", "approve", PROD, "C_OPS", "deny"),  # approves dev changes only
    ("U_LEAD", "approve", DEV, "C_OPS", "allow"),
    ("U_NIGHT", "ecs.reboot", PROD, "C_OPS", "approval"),
    ("U_NIGHT", "ecs.reboot", STAGING, "C_DEV", "deny"),  # the role holds in #ops only
    ("U_NOBODY", "ecs.stop", DEV, "C_OPS", "deny"),
    ("U_ADMIN", "ecs.stop", PROD, "C_OPS", "approval"),  # an admin is held by the rule too
    ("U_ADMIN", "anything.at_all", PROD, "C_DEV", "allow"),
]


@pytest.mark.parametrize(("user", "action", "targets", "channel", "expected"), CASES)
def test_who_may_do_what_where(authz, user, action, targets, channel, expected):
    assert verdict(authz, user, action, targets, channel) == expected


def test_a_refusal_names_the_rule_and_the_instances_outside(authz):
    targets = [inst("dev", 1), inst("prod", 2), inst("prod", 3)]
    with pytest.raises(Forbidden) as refused:
        authz.authorize(Actor("U_DEV", "C_OPS"), "ecs.stop", targets, detail="/ecs stop tag:app=web")
    text = refused.value.message
    assert "`tag:env=dev` or `name:sandbox-*` (role devs)" in text
    assert "2 of the 3 targets fall outside" in text and "prod-web-02 (i-prod0002)" in text
    assert "dev-web-01" not in text
    record = authz.recent(1)[0]
    assert (record.decision, record.rule, record.who) == ("deny", "scope of role devs", "U_DEV")
    assert record.targets == [t.id for t in targets]


def test_a_role_limited_to_channels_says_where_it_holds(authz):
    decision = authz.decide(Actor("U_NIGHT", "C_DEV"), "ecs.reboot", STAGING)
    assert not decision.allowed and "only in <#C_OPS>" in decision.reason


def test_help_sees_where_a_permission_holds(authz):
    assert authz.scopes_of(Actor("U_DEV"), "ecs.stop") == ["tag:env=dev", "name:sandbox-*"]
    assert authz.scopes_of(Actor("U_SRE1"), "ecs.stop") is None  # everywhere
    assert authz.scopes_of(Actor("U_NOBODY"), "ecs.stop") == []
    assert authz.allowed(Actor("U_DEV"), "ecs.stop") and not authz.allowed(Actor("U_DEV"), "ecs.reboot")


envs = st.sampled_from(["dev", "prod", "staging", None])
target_lists = st.lists(st.tuples(envs, st.booleans()), min_size=1, max_size=8).map(
    lambda items: [inst(env, i, "sandbox-x" if sandbox else None) for i, (env, sandbox) in enumerate(items)]
)


@settings(max_examples=200, deadline=None)
@given(targets=target_lists)
def test_a_scoped_role_never_reaches_outside_its_scope(tmp_path_factory, targets):
    authz = Authorizer(
        Policy.model_validate(POLICY),
        (),
        SQLiteStore(tmp_path_factory.mktemp("s") / "s.db"),
        groups=Groups({"S_DEVS": {"U_DEV"}}),
    )
    inside = all(t.tags.get("env") == "dev" or t.name.startswith("sandbox-") for t in targets)
    allowed = authz.decide(Actor("U_DEV", "C_OPS"), "ecs.stop", targets).allowed
    assert allowed == (inside and len(targets) <= 3)
    sre = verdict(authz, "U_SRE1", "ecs.stop", targets)
    assert sre == ("approval" if any(t.tags.get("env") == "prod" for t in targets) else "allow")


tag_keys = st.sampled_from(["env", "app", "team", "Schedule"])
tag_values = st.sampled_from(["dev", "prod", "web", "db", ""])
tag_sets = st.dictionaries(tag_keys, tag_values, max_size=4)
conditions = st.lists(st.tuples(tag_keys, st.none() | tag_values), max_size=3)


@settings(max_examples=300, deadline=None)
@given(tags=tag_sets, wanted=conditions, name=st.sampled_from(["web-01", "db-01", "web-02"]))
def test_a_selector_matches_exactly_the_instances_it_describes(tags, wanted, name):
    text = " ".join(f"tag:{k}" + ("" if v is None else f"={v}") for k, v in wanted) + " name:web-*"
    selector = parse_selector(text)
    expected = all(k in tags and (v is None or tags[k] == v) for k, v in wanted) and name.startswith("web-")
    assert selector.matches(Target("i-abcd1234", tags, name, "cn-hangzhou")) == expected
    assert Selector(region="cn-shanghai").matches(Target("i-abcd1234", tags, name, "cn-hangzhou")) is False


def test_group_membership_is_asked_only_for_roles_with_groups(authz):
    authz.decide(Actor("U_SRE1", "C_OPS"), "ecs.stop", PROD)
    assert authz.groups.asked == [("S_DEVS", "U_SRE1")]  # one role lists a group; members are not asked


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("roles:\n  devs:\n    members: [U1]\n    permissions: [ecs.stp]\n", "roles.devs.permissions[0]"),
        (
            "roles:\n  devs:\n    members: [U1]\n    permissions: [ecs.stop]\n    max_instances: {ecs.sotp: 3}\n",
            "roles.devs.max_instances.ecs.sotp",
        ),
        ("roles:\n  devs:\n    permissions: [ecs.stop]\n    scopes: ['tag:']\n", "roles.devs.scopes"),
        (
            "roles:\n  devs:\n    permissions: [ecs.stop]\n    scopes: ['status:running']\n",
            "roles.devs.scopes",
        ),
        ("roles:\n  devs:\n    permissions: [ecs.stop]\n    groups: [devs]\n", "roles.devs.groups"),
        ("approvals:\n  - selector: 'tag:env=prod'\n", "approvals[0]"),
        (
            "roles:\n  a:\n    members: [U1]\n    permissions: [approve]\napprovals:\n  - approvers: [b]\n",
            "approvals[0].approvers[0]",
        ),
        (
            "roles:\n  a:\n    members: [U1]\n    permissions: [approve]\napprovals:\n  - actions: [ecs.halt]\n",
            "approvals[0].actions[0]",
        ),
        (
            "roles:\n  a:\n    members: [U1]\n    permissions: [approve]\napprovals:\n  - selector: 'wat:x'\n",
            "approvals.0.selector",
        ),
    ],
)
def test_a_bad_access_policy_stops_start_up_naming_the_field(tmp_path, text, where):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_policy(path, Registry.discover())
    assert where.replace("approvals.0", "approvals[0]") in str(err.value) or where in str(err.value)


def test_the_unknown_permission_error_suggests_the_nearest_name(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("roles:\n  devs:\n    members: [U1]\n    permissions: [ecs.stp]\n")
    with pytest.raises(ConfigError, match="did you mean 'ecs.stop'"):
        load_policy(path, Registry.discover())
