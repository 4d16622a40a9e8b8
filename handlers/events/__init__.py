"""ECS events from CloudMonitor via MNS: notifications, lifecycle history, auto-restart, SLB on interruption.

consumer.py     `chatops worker` loop (@background "mns-events"): batch receive → process → batch delete
processing.py   one batch: parse → claim → enrich → act → effects + confirm (atomic) → what to delete
envelope.py     body → EcsEvent (pure; both CloudMonitor shapes, Base64 or raw JSON)
routing.py      event + tags → channels (pure)          render.py    facts → Slack text/blocks (pure)
restart_policy  may an unexpected stop be restarted (pure)   autorestart.py   … and doing it
interruption.py preemptible interruption → out of the SLB vserver groups
instances.py    names and tags: cached, fetched 100 ids per DescribeInstances, remembered after release
batch_store.py  batched claims and effects+confirm as one store commit; the outbox FIFOs
notifier.py     outboxes → Slack at ≤ 1 call/s/channel; bursts → one digest edited in place (+ file)
digest.py       what a digest holds and how it reads (pure)
history.py      `/ecs history INSTANCE [DAYS]` and the retention job
queue_depth.py  the queue's messages by state and the oldest one's age, once a minute: metrics and
                `/ecs events status`
keys.py         the store keys
"""
