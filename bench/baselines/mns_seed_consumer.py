"""The seed's MNS consumer of ECS events, re-implemented faithfully (the baseline of `chatops bench events`).

One loop, one thread, the official aliyun-mns-sdk: receive ONE message with a 5-second long poll, parse
the ECS event JSON, post one Slack message per event (slack_sdk `WebClient.chat_postMessage`, to one
fixed channel, with the SDK's default retry handlers: a 429 is not retried), then delete the message —
also when anything before failed, so an event whose post was refused (429, an error) is lost. No
dedupe: a message delivered twice is posted twice.

One courtesy to keep the loop going: the body is read raw and Base64-decoded here when it is not JSON
already (the SDK's own decoding cannot receive a raw-JSON body at all, which would stall the loop on
the first one until the benchmark gave up).

Run as a process of its own (like the seed, and like our worker), so that it does not share an
interpreter with the emulators:

    python -m bench.baselines.mns_seed_consumer ENDPOINT QUEUE SLACK_API_URL CHANNEL MAX_MESSAGES [BUDGET_S]

It stops after MAX_MESSAGES messages, after BUDGET_S seconds, or when a receive finds the queue empty,
and prints one JSON line: messages, posted, failed (posts refused), slack_429s, seconds (first message
received to last one deleted).
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import time

from mns.account import Account
from mns.mns_exception import MNSExceptionBase, MNSServerException
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox import credentials

WAIT_SECONDS = 5


def event_text(event: dict) -> str:
    """The seed's message: the instance and its new state (shape a or b of the envelope)."""
    content = event.get("content") or {}
    iid = content.get("resourceId") or content.get("instanceId") or str(event.get("resourceId", "?"))
    iid = iid.rsplit("/", 1)[-1]
    state = content.get("state") or content.get("action") or "?"
    return f"ECS {event.get('name', 'event')}: instance ({iid}) → {state}"


def parse(body: str) -> dict:
    text = body.strip()
    if not text.startswith("{"):
        try:
            text = base64.b64decode(text).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            pass
    return json.loads(text)


def consume(
    endpoint: str, queue_name: str, slack_url: str, channel: str, max_messages: int, budget: float = 600.0
) -> dict:
    queue = Account(
        endpoint, credentials.ALIBABA_ACCESS_KEY_ID, credentials.ALIBABA_ACCESS_KEY_SECRET
    ).get_queue(queue_name)
    queue.set_encoding(False)
    slack = WebClient(token=credentials.SLACK_BOT_TOKEN, base_url=slack_url)
    messages = posted = failed = ratelimited = 0
    first = last = None
    deadline = time.monotonic() + budget
    while messages < max_messages and time.monotonic() < deadline:
        try:
            msg = queue.receive_message(wait_seconds=WAIT_SECONDS)
        except MNSServerException as exc:
            if exc.type == "MessageNotExist":
                break  # the seed would poll on; the benchmark's queue is drained
            raise
        if first is None:
            first = time.time()
        messages += 1
        try:
            event = parse(msg.message_body)
            slack.chat_postMessage(channel=channel, text=event_text(event))
            posted += 1
        except SlackApiError as exc:
            failed += 1
            if exc.response.status_code == 429:
                ratelimited += 1
        except Exception:  # noqa: BLE001 - the seed logged and moved on
            failed += 1
        try:
            queue.delete_message(msg.receipt_handle)  # deleted whatever happened: a failure is lost
        except MNSExceptionBase:
            pass
        last = time.time()
    return {
        "messages": messages,
        "posted": posted,
        "failed": failed,
        "slack_429s": ratelimited,
        "seconds": round((last or 0.0) - (first or 0.0), 3),
    }


def main(argv: list[str]) -> int:
    endpoint, queue_name, slack_url, channel, max_messages = argv[:5]
    budget = float(argv[5]) if len(argv) > 5 else 600.0
    print(
        json.dumps(consume(endpoint, queue_name, slack_url, channel, int(max_messages), budget)), flush=True
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
