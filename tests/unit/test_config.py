import subprocess
import sys

import pytest

from bot.config import Settings, load_settings
from bot.errors import ConfigError


def test_defaults_and_csv_lists():
    s = load_settings(
        {
            "CHATOPS_ADMINS": "U1, U2,,",
            "PAGERDUTY_WEBHOOK_SECRETS": "a,b",
            "SLACK_API_URL": "http://127.0.0.1:9/api",
        }
    )
    assert s.CHATOPS_ADMINS == ("U1", "U2")
    assert [x.get_secret_value() for x in s.PAGERDUTY_WEBHOOK_SECRETS] == ["a", "b"]
    assert s.SLACK_API_URL == "http://127.0.0.1:9/api/"
    assert s.REDIS_URL is None
    assert s.PAGERDUTY_API_URL == Settings.model_fields["PAGERDUTY_API_URL"].default


def test_settings_are_frozen_and_secrets_redacted():
    s = load_settings(
        {"SLACK_BOT_TOKEN": "xoxb-very-secret-value", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "ak-secret-123"}
    )
    assert "xoxb-very-secret-value" not in repr(s)
    assert "ak-secret-123" not in repr(s)
    assert s.secret("SLACK_BOT_TOKEN") == "xoxb-very-secret-value"
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError for frozen models
        s.SLACK_NOTIFY_CHANNEL = "C2"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
        ({"SLACK_API_URL": "chat.example.invalid/api"}, "SLACK_API_URL"),
        ({"CHATOPS_TIMEZONE": "Mars/Olympus"}, "CHATOPS_TIMEZONE"),
        ({"CHATOPS_MAX_BODY_BYTES": "-5"}, "CHATOPS_MAX_BODY_BYTES"),
        ({"MNS_ENDPOINT": "mns.example"}, "MNS_ENDPOINT"),
    ],
)
def test_invalid_setting_names_the_variable(env, name):
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert name in message and "\n" not in message


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        ({"REDIS_URL": "nonsense://"}, "REDIS_URL"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": "s"}, "SLACK_BOT_TOKEN"),
    ],
)
def test_cli_stops_with_one_line_naming_the_variable(tmp_path, extra, name):
    env = {"PATH": "/usr/bin:/bin", "CHATOPS_DATA_DIR": str(tmp_path), **extra}
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "web", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], proc.stderr
