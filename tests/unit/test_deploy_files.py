"""Procfile, app.yaml and the Slack manifest parse, and what they name exists."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from bot.cli import subcommand_names
from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _chatops_subcommands() -> set[str]:
    return subcommand_names()


def test_procfile_has_web_and_worker_and_they_exist():
    entries = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    assert set(entries) == {"web", "worker"}
    web = shlex.split(entries["web"])
    assert web[0] == "gunicorn" and web[-1] == "bot.web:create_app()"
    worker = shlex.split(entries["worker"])
    assert worker[0] == "chatops" and worker[1] in _chatops_subcommands()


def test_app_yaml_is_a_python3_gunicorn_app_with_known_env_vars():
    app = yaml.safe_load((ROOT / "app.yaml").read_text())
    assert app["runtime"].startswith("python3")
    assert "gunicorn" in app["entrypoint"] and "bot.web:create_app()" in app["entrypoint"]
    assert app["automatic_scaling"]["min_instances"] >= 1
    assert set(app["env_variables"]) <= set(Settings.model_fields)


def test_gunicorn_factory_target_exists():
    import bot.web

    assert callable(bot.web.create_app)


def test_manifest_declares_the_commands_the_bot_handles():
    manifest = yaml.safe_load((ROOT / "manifest.yaml").read_text())
    declared = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert declared == {"/ecs", "/incident", "/oncall"}
    from bot.registry import Registry

    handled = set(Registry.discover().commands)
    assert {"/ecs", "/incident"} <= handled
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    urls = {c["url"] for c in manifest["features"]["slash_commands"]}
    urls.add(manifest["settings"]["interactivity"]["request_url"])
    assert all(u.endswith("/slack/events") for u in urls)
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "files:write", "users:read", "users:read.email"} <= scopes


def test_interfaces_commands_exist():
    assert {"web", "worker", "sandbox", "emulators", "bench"} <= _chatops_subcommands()


def test_bench_options_may_follow_json():
    import pytest

    from bot.cli import parse_args

    args = parse_args(["bench", "fleet", "--json", "instances=50", "qps=5"])
    assert args.name == "fleet" and args.json and args.options == ["instances=50", "qps=5"]
    with pytest.raises(SystemExit):
        parse_args(["web", "--bogus"])
