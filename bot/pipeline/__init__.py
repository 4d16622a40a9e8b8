"""The change pipeline every capability that changes something goes through:

    request (slash command, schedule, runbook step, event)
      -> plan        kind, origin, resolved targets, preview, expiry           (plans.py)
      -> authorize   with the targets, audited                                 (bot.authz)
      -> gates       Confirm / Cancel, then the approval slot; single-use, expiring (gates.py)
      -> job         durable: lease, heartbeat, per-step state, resume or report interrupted (jobs.py)
      -> progress    one message edited in place (≈1/s), replaced by the report (+ a file)   (progress.py)
      -> audit       the result, with the origin

A capability adds a `PlanKind` (kinds.py: preview, run, report) and builds its plans; the rest is here.
"""
