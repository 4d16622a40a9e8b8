"""The conventional receiver's queue when it is Dramatiq (RedisBroker on `REDIS_URL`), and the actor
its worker runs: `python -m dramatiq bench.baselines.webhook_dramatiq --processes 1 --threads 8`.

Dramatiq acknowledges a message after the actor returns and another worker takes back a dead worker's
unacknowledged messages (the broker's heartbeats, 60 s, and its maintenance, run by a random 0.1 % of
broker calls), so delivery is at least once.

The actor runs the bot's own effect of the event (handlers.pagerduty.effects.apply_event: the card,
its edits and thread replies, claimed on the event id) with the bot's services built once per process,
so a drain compares the queues and not two different effects. An update that arrives before its
incident's card raises (`RetryJob`) and Dramatiq's Retries middleware runs it again (backoff 0.2 to 5 s).
"""

from __future__ import annotations

import os
import threading

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

QUEUE = "pagerduty"

client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
broker = RedisBroker(client=client)
dramatiq.set_broker(broker)

_services = None
_services_lock = threading.Lock()


def _bot_services():
    global _services
    with _services_lock:
        if _services is None:
            from bot.config import load_settings
            from bot.logs import configure_logging
            from bot.services import Services

            settings = load_settings()
            configure_logging(settings.CHATOPS_LOG_LEVEL)
            _services = Services(settings)
    return _services


@dramatiq.actor(queue_name=QUEUE, max_retries=20, min_backoff=200, max_backoff=5000)
def post_effect(delivery: str, webhook_id: str | None = None) -> None:
    from handlers.pagerduty.effects import apply_event
    from handlers.pagerduty.events import event_at

    apply_event(_bot_services(), event_at(delivery.encode(), webhook_id, 0).as_job())
