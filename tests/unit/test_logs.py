"""The JSON log lines mask registered secrets wherever they appear in a line, in any usual encoding."""

from __future__ import annotations

import json
import logging
import sys
from urllib.parse import quote, quote_plus

from bot.logs import JsonFormatter, register_secret

SECRET = 'k3y+with/odd "chars" \\ é'


def _line(msg: str, *args, exc_info=None, **extra) -> str:
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, msg, args, exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    return JsonFormatter().format(record)


def test_a_secret_is_masked_in_the_message_extra_fields_and_exception_text():
    register_secret(SECRET)
    try:
        raise RuntimeError(f"upstream said: token={SECRET}")
    except RuntimeError:
        out = _line("calling with %s", SECRET, exc_info=sys.exc_info(), body={"token": SECRET})
    assert SECRET not in out and json.dumps(SECRET)[1:-1] not in out
    line = json.loads(out)
    assert SECRET not in json.dumps(line, ensure_ascii=False)
    assert line["msg"] == "calling with ***" and "RuntimeError: upstream said: token=***" in line["exc"]


def test_a_secret_is_masked_when_url_encoded_or_quoted_twice():
    register_secret(SECRET)
    out = _line(
        "sent %s and %s",
        f"token={quote_plus(SECRET)}",
        f"/api?token={quote(SECRET, safe='')}",
        payload=json.dumps({"token": SECRET}),
    )
    for form in (quote_plus(SECRET), quote(SECRET, safe=""), SECRET, json.dumps(SECRET)[1:-1]):
        assert form not in out
    assert json.loads(out)["msg"] == "sent token=*** and /api?token=***"


def test_short_values_are_not_taken_for_secrets():
    register_secret("abc")
    assert json.loads(_line("abc is fine"))["msg"] == "abc is fine"
