"""Run templates: typed, validated parameters and strict sandboxed rendering (handlers.ecs.run_templates)."""

from __future__ import annotations

import pydantic
import pytest

from bot.errors import UserError
from handlers.ecs.run_templates import RunPolicy, Template, render

DISK = Template.model_validate(
    {
        "type": "shell",
        "command": "df -h {{ path | quote }} --max-depth={{ depth }}",
        "params": {
            "path": {"type": "str", "default": "/", "pattern": r"^/[\w./-]*$"},
            "depth": {"type": "int", "default": 1, "min": 0, "max": 5},
        },
    }
)


def test_defaults_typed_values_and_quoting():
    assert render("disk", DISK, {}, "usage") == ("df -h / --max-depth=1", {"path": "/", "depth": 1})
    command, values = render("disk", DISK, {"path": "/var/lib/my sql".replace(" ", ""), "depth": "3"}, "u")
    assert command == "df -h /var/lib/mysql --max-depth=3" and values["depth"] == 3


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"path": "/etc; rm -rf /"}, "does not match"),
        ({"depth": "9"}, "at most 5"),
        ({"depth": "two"}, "whole number"),
        ({"colour": "red"}, "has no parameter `colour`"),
    ],
)
def test_bad_values_are_refused_before_rendering(given, message):
    with pytest.raises(UserError) as caught:
        render("disk", DISK, given, "usage")
    assert message in caught.value.message


def test_a_required_parameter_and_an_enum():
    t = Template.model_validate(
        {
            "command": "systemctl {{ action }} {{ unit }}",
            "params": {
                "action": {"enum": ["status", "restart"]},
                "unit": {"pattern": r"^[a-z0-9@._-]+$", "description": "a systemd unit"},
            },
        }
    )
    with pytest.raises(UserError, match="needs `action=…`"):
        render("svc", t, {"unit": "nginx"}, "u")
    with pytest.raises(UserError, match="must be one of status, restart"):
        render("svc", t, {"action": "stop", "unit": "nginx"}, "u")
    assert render("svc", t, {"action": "restart", "unit": "nginx"}, "u")[0] == "systemctl restart nginx"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"command": "echo {{ x }}", "params": {"x": {"type": "str"}}}, "needs a `pattern` or an `enum`"),
        ({"command": "echo {{ x }}", "params": {"x": {"type": "int", "pattern": "a"}}}, "apply to str"),
        ({"command": "echo {{ x ", "params": {}}, "not a valid template"),
        ({"command": "echo {{ x }}", "params": {"x": {"pattern": "["}}}, "not a regular expression"),
        ({"command": "echo {{ x }}", "params": {"x": {"pattern": "^a$", "default": "b"}}}, "does not match"),
    ],
)
def test_bad_templates_stop_start_up_saying_why(raw, message):
    with pytest.raises(pydantic.ValidationError) as caught:
        Template.model_validate(raw)
    assert message in str(caught.value)


def test_a_template_naming_something_undefined_fails_to_render_instead_of_running_half_a_command():
    t = Template.model_validate({"command": "echo {{ missing }}"})
    with pytest.raises(UserError, match="could not be rendered"):
        render("t", t, {}, "u")


def test_the_sandbox_refuses_unsafe_attribute_access():
    t = Template.model_validate({"command": "{{ ''.__class__.__mro__ }}"})
    with pytest.raises(UserError, match="could not be rendered"):
        render("t", t, {}, "u")


def test_policy_defaults():
    assert RunPolicy().max_command_bytes == 16384 and RunPolicy().templates == {}
