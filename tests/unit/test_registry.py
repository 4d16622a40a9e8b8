"""The registry: a test builds its own, a duplicate is an error at start, capabilities contribute
policy sections and read permissions without editing the core."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from bot.cli import main
from bot.config import load_settings
from bot.errors import ConfigError
from bot.policy import load_policy
from bot.registry import Capability, DuplicateRegistration, Registry
from bot.services import Services


def _stop(req):
    return None


def test_a_registry_holds_only_what_it_includes():
    mine = Capability("tests.mine")
    mine.subcommand("/zz", "go", permission="zz.go", usage="/zz go", summary="go")(_stop)
    mine.job("zz.job")(_stop)
    registry = Registry().include(mine)
    assert set(registry.commands) == {"/zz"} and set(registry.jobs) == {"zz.job"}
    assert "/ecs" in Registry.discover().commands and "/zz" not in Registry.discover().commands


@pytest.mark.parametrize(
    "declare",
    [
        lambda c: c.subcommand("/ecs", "stop", permission="ecs.stop", usage="u", summary="s")(_stop),
        lambda c: c.action("plan.confirm", permission="x")(_stop),
        lambda c: c.job("pipeline.run")(_stop),
        lambda c: c.periodic("pipeline.resume")(_stop),
        lambda c: c.route("POST", "/pagerduty/webhook")(_stop),
        lambda c: c.adapter("ecs")(_stop),
        lambda c: c.builder("list")(_stop),
    ],
)
def test_a_duplicate_registration_is_an_error_at_start(declare):
    twin = Capability("tests.twin")
    declare(twin)
    with pytest.raises(DuplicateRegistration, match="registered twice"):
        Registry.discover(extra=[twin])


def test_a_duplicate_stops_start_up_with_one_line(tmp_path):
    twin = Capability("tests.twin")
    twin.job("ecs.lookup")(_stop)
    settings = load_settings({"CHATOPS_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="job 'ecs.lookup' is registered twice"):
        Services(settings, registry=Registry.discover(extra=[twin]))


def test_chatops_reports_a_config_error_as_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CHATOPS_CONFIG", str(tmp_path / "missing.yaml"))
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chatops: ") and len(err.strip().splitlines()) == 1


class WidgetPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    size: int = 3


def test_a_capability_contributes_a_policy_section_and_read_permissions(tmp_path):
    widgets = Capability("tests.widgets")
    widgets.policy_section("widgets", WidgetPolicy)
    widgets.read_permissions("widget.list")
    registry = Registry.discover(extra=[widgets])
    path = tmp_path / "policy.yaml"
    path.write_text("widgets:\n  size: 7\n")
    policy = load_policy(path, registry)
    assert policy.widgets.size == 7 and policy.ecs.max_instances["stop"] == 500
    assert "widget.list" in policy.permissions_of("U_ANYONE")
    assert load_policy(None, registry).widgets.size == 3
    path.write_text("widgets:\n  colour: red\n")
    with pytest.raises(ConfigError, match="widgets.colour"):
        load_policy(path, registry)
    with pytest.raises(ConfigError, match="widgets"):
        load_policy(path)  # without the capability the section is unknown
