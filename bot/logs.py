"""Structured JSON logs on stderr. Secrets never reach them: known secret values are masked in the
whole line (message, extra fields, exception text and traceback), also where they appear JSON-escaped
or URL-encoded (a form body or query string quoted in an exception)."""

from __future__ import annotations

import json
import logging
import sys
import time
from urllib.parse import quote, quote_plus

AUDIT_LOGGER = "chatops.audit"

_SECRETS: set[str] = set()  # every form a registered secret may take in a line, longest first when used


def register_secret(value: str | None) -> None:
    if value and len(value) >= 6:
        escaped = json.dumps(value)[1:-1]
        _SECRETS.update(
            {
                value,
                escaped,
                json.dumps(escaped)[1:-1],  # a JSON text quoted inside a JSON string
                json.dumps(value, ensure_ascii=False)[1:-1],
                quote(value, safe=""),
                quote_plus(value),
            }
        )


def _mask(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


class JsonFormatter(logging.Formatter):
    _skip = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._skip and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _mask(json.dumps(out, default=str))


def configure_logging(level: str = "INFO", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("urllib3", "httpx", "httpx2", "huey.consumer.Scheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The audit trail's lines (bot.audit) feed a SIEM: they are written whatever the level.
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.INFO)
