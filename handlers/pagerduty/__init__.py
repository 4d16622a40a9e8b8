"""PagerDuty: calendar-driven planned-work incidents, webhooks → Slack messages with Acknowledge / Resolve
buttons (deduplicated in the store), `/incident` and `/oncall`.

Pure parts: `events` (signatures, delivery parsing), `messages` (Block Kit), `planning` (calendar
occurrences → actions). I/O parts: `webhook` (the HTTP route), `effects` (the Slack side, on the worker),
`incidents` and `oncall` (commands and buttons), `calendar_sync` (the periodic job).
"""
