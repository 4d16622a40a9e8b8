"""The services one process shares: its registry, settings, policy, store, queue, Slack client,
authorizer, Slack user group membership, clock, metrics, and lazily built vendor adapters. Handlers
receive it; nothing else is global."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

from bot.adapters.slack import SlackMessenger, make_web_client
from bot.authz import Authorizer
from bot.clock import SYSTEM_CLOCK, Clock
from bot.config import Settings
from bot.groups import GroupMembership
from bot.logs import register_secret
from bot.metrics import Metrics
from bot.policy import DEFAULT_READ_PERMISSIONS, Policy, load_policy
from bot.queue import TaskQueue
from bot.registry import Registry
from bot.store import Store, open_store
from dedupe import Deduper


class Services:
    def __init__(
        self,
        settings: Settings,
        policy: Policy | None = None,
        store: Store | None = None,
        registry: Registry | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ):
        self.registry = registry if registry is not None else Registry.discover()
        self.settings = settings
        self.clock = clock
        self.policy = policy if policy is not None else load_policy(settings.CHATOPS_CONFIG, self.registry)
        self.store = store if store is not None else open_store(settings.REDIS_URL, settings.CHATOPS_DATA_DIR)
        self.metrics = Metrics()
        # Who is in the Slack user groups that roles name (`groups:`); the Slack adapter is built on first use.
        self.groups = GroupMembership(lambda group: self.slack.usergroup_members(group), self.clock)
        reads = (*DEFAULT_READ_PERMISSIONS, *self.registry.read_permissions)
        self.authz = Authorizer(
            self.policy, settings.CHATOPS_ADMINS, self.store, reads, groups=self.groups, clock=self.clock
        )
        self._adapters: dict[str, Any] = {}
        self._lock = threading.RLock()  # an adapter may be built from another (cloud_assistant from ecs)
        for name in (
            "SLACK_BOT_TOKEN",
            "SLACK_SIGNING_SECRET",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            "PAGERDUTY_API_KEY",
        ):
            register_secret(settings.secret(name))
        for secret in settings.PAGERDUTY_WEBHOOK_SECRETS:
            register_secret(secret.get_secret_value())
        self.queue = TaskQueue(settings.REDIS_URL, settings.CHATOPS_DATA_DIR, self.registry)

    @cached_property
    def slack_client(self):
        return make_web_client(self.settings.secret("SLACK_BOT_TOKEN"), self.settings.SLACK_API_URL)

    @property
    def slack(self) -> SlackMessenger:
        return self.adapter("slack")

    @property
    def timezone(self):
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.policy.timezone) if self.policy.timezone else self.settings.timezone

    def adapter(self, name: str) -> Any:
        found = self._adapters.get(name)
        if found is None:
            with self._lock:
                found = self._adapters.get(name)
                if found is None:
                    found = self.registry.adapter_factory(name)(self)
                    self._adapters[name] = found
        return found

    def deduper(self, namespace: str, pending_ttl: float = 60.0, done_ttl: float = 7 * 86400) -> Deduper:
        return Deduper(self.store, namespace, pending_ttl=pending_ttl, done_ttl=done_ttl)

    def close(self) -> None:
        for adapter in self._adapters.values():
            close = getattr(adapter, "close", None)
            if callable(close):
                close()
        self.store.close()
