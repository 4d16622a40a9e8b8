"""Idempotency: claim → confirm / release with TTLs, through Store methods (Redis or SQLite alike).

`dedupe.core.Deduper` handles one key at a time (batches: `Store.claim_many` and `Store.commit_many`,
as handlers/events/batch_store.py uses them); `dedupe.admit.DeliveryGate` dedupes a delivery over
several keys and enqueues its job in the same atomic step (webhook endpoints).

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
