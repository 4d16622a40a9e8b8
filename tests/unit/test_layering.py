"""The store seam stays closed: only bot/store and bot/queue know Redis and Huey; handlers/ and dedupe/
reach storage through Store methods and never import a vendor SDK."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORAGE = {"redis", "huey", "sqlite3"}
VENDOR_SDKS = {"slack_bolt", "slack_sdk", "pagerduty", "mns", "alibabacloud_credentials"}
STORE_INTERNALS = {"PREFIX", "RedisStore", "SQLiteStore", "ScriptRunner", "script_runner"}


def _modules(*packages: str):
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path))


def _imported(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def _names(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.alias):
            out.add(node.name.split(".")[-1])
    return out


def test_handlers_and_dedupe_use_only_store_methods():
    offenders = {}
    for name, tree in _modules("handlers", "dedupe"):
        imported = _imported(tree)
        bad = (imported & (STORAGE | VENDOR_SDKS)) | {m for m in imported if m.startswith("alibabacloud")}
        bad |= _names(tree) & STORE_INTERNALS
        if bad:
            offenders[name] = sorted(bad)
    assert offenders == {}


def test_only_the_store_and_the_queue_in_bot_know_redis_and_huey():
    allowed = ("bot/store/", "bot/queue.py", "bot/queue_delivery.py", "bot/adapters/")
    offenders = {}
    for name, tree in _modules("bot"):
        if name.startswith(allowed):
            continue
        bad = (_imported(tree) & {"redis", "huey"}) | (_names(tree) & (STORE_INTERNALS - {"SQLiteStore"}))
        if bad:
            offenders[name] = sorted(bad)
    assert offenders == {}
