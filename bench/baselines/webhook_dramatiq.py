"""The conventional receiver's queue when it is Dramatiq (RedisBroker on `REDIS_URL`), and the actor
its worker runs: `python -m dramatiq bench.baselines.webhook_dramatiq --processes 1 --threads 8`.

Dramatiq acknowledges a message after the actor returns and another worker takes back a dead worker's
unacknowledged messages (the broker's heartbeats and maintenance), so delivery is at least once; the
actor makes its effect single with a done mark written after the Slack calls.

The effect is the bot's, in Slack calls: `incident.triggered` posts the incident card (chat.postMessage)
and remembers its ts; a later event edits the card (chat.update) and adds a thread reply
(chat.postMessage), after the card exists (before that the message is retried: Dramatiq's Retries
middleware, backoff 0.2 to 5 s). It does not run the bot's Block Kit rendering, routing or audit.
"""

from __future__ import annotations

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from slack_sdk import WebClient

QUEUE = "pagerduty"
CARDS = "pagerduty:cards"  # hash: incident id → the card's ts
DONE_TTL = 7 * 86400

client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
broker = RedisBroker(client=client)
dramatiq.set_broker(broker)

_slack = WebClient(
    token=os.environ.get("SLACK_BOT_TOKEN"),
    base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
    timeout=10,
)
_channel = os.environ.get("SLACK_NOTIFY_CHANNEL", "C_OPS")


class CardNotPostedYet(Exception):
    """An update arrived before its incident's card: tried again after a backoff."""


def pending() -> int:
    """Messages not acknowledged yet (queued, delayed for a retry, or held by a worker)."""
    return int(client.hlen(f"dramatiq:{QUEUE}.msgs")) + int(client.hlen(f"dramatiq:{QUEUE}.DQ.msgs"))


@dramatiq.actor(queue_name=QUEUE, max_retries=20, min_backoff=200, max_backoff=5000)
def post_effect(event: dict) -> None:
    done = f"pagerduty:effect:{event['id']}"
    if client.exists(done):
        return
    incident = event["data"]
    title = f"[#{incident.get('number')}] {incident.get('title')}"
    if event["event_type"] == "incident.triggered":
        card = _slack.chat_postMessage(channel=_channel, text=f"{title} — {incident.get('status')}")
        client.hset(CARDS, incident["id"], card["ts"])
    else:
        ts = client.hget(CARDS, incident["id"])
        if ts is None:
            raise CardNotPostedYet(incident["id"])
        ts = ts.decode()
        agent = (event.get("agent") or {}).get("summary") or "someone"
        verb = event["event_type"].removeprefix("incident.")
        _slack.chat_update(channel=_channel, ts=ts, text=f"{title} — {incident.get('status')}")
        _slack.chat_postMessage(channel=_channel, thread_ts=ts, text=f"{agent}: {verb}")
    client.set(done, "1", ex=DONE_TTL)
