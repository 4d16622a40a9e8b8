"""The MNS emulator's drain limit (`chatops bench events`' `limit_events_per_second`): THREADS loops,
each with its own aliyun-mns-sdk connection (as our consumer threads have), doing batch receive 16 →
batch delete of those handles and nothing else, until a receive finds the queue empty. No parsing, no
store, no Slack: no consumer on this emulator can go faster with that many connections.

Runs as a process of its own, like our worker:

    python -m bench._mns_limit ENDPOINT QUEUE THREADS

and prints one JSON line: messages, threads, seconds (its own clock, first receive to last delete).
"""

from __future__ import annotations

import json
import sys
import threading
import time

from mns.account import Account
from mns.mns_exception import MNSServerException

from sandbox import credentials

BATCH = 16
WAIT_SECONDS = 1


def _drain(endpoint: str, queue_name: str, counts: list[int], marks: list[float], lock: threading.Lock):
    queue = Account(
        endpoint, credentials.ALIBABA_ACCESS_KEY_ID, credentials.ALIBABA_ACCESS_KEY_SECRET
    ).get_queue(queue_name)
    queue.set_encoding(False)
    got = 0
    while True:
        try:
            messages = queue.batch_receive_message(BATCH, WAIT_SECONDS)
        except MNSServerException as exc:
            if exc.type == "MessageNotExist":
                break
            raise
        with lock:
            marks.append(time.time())
        queue.batch_delete_message([m.receipt_handle for m in messages])
        got += len(messages)
        with lock:
            marks.append(time.time())
    with lock:
        counts.append(got)


def drain(endpoint: str, queue_name: str, threads: int) -> dict:
    counts: list[int] = []
    marks: list[float] = []
    lock = threading.Lock()
    workers = [
        threading.Thread(target=_drain, args=(endpoint, queue_name, counts, marks, lock), daemon=True)
        for _ in range(threads)
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return {
        "messages": sum(counts),
        "threads": threads,
        "seconds": round(max(marks) - min(marks), 3) if marks else 0.0,
    }


def main(argv: list[str]) -> int:
    endpoint, queue_name, threads = argv[:3]
    print(json.dumps(drain(endpoint, queue_name, int(threads))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
