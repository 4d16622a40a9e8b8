"""Idempotency: claim → confirm / release with TTLs, on the Redis or SQLite store.

`dedupe.core.Deduper` handles one key at a time; `dedupe.batch.EventStore` claims a batch at once and
commits each event's effects together with its confirmation (one Lua script on Redis), for consumers
that handle thousands of events a second; `dedupe.admit.DeliveryGate` dedupes a delivery over several
keys and enqueues its job in the same atomic step (webhook endpoints).

result = deduper.claim(key)
if result.status is ClaimStatus.CLAIMED:
    try:
        act()
    except Exception:
        deduper.release(key, result.token)   # someone (a redelivery) may try again
        raise
    deduper.confirm(key, result.token)       # every later claim sees DONE
elif result.status is ClaimStatus.DONE:      # already handled: skip (and delete / 2xx)
    ...
else:                                        # BUSY: in flight elsewhere; leave it for now
    ...
"""

from dedupe.core import ClaimResult, ClaimStatus, Deduper
from dedupe.keys import dedupe_key

__all__ = ["ClaimResult", "ClaimStatus", "Deduper", "dedupe_key"]
