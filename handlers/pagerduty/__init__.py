"""PagerDuty: calendar-driven planned-work incidents, webhooks → Slack incident cards that stay true
(deduplicated in the store), `/incident` and `/oncall`; from a card or a sub-command anyone with the
role may acknowledge, resolve, reassign, escalate, note, snooze and set the priority or urgency.

Pure parts: `events` (signatures, delivery parsing), `messages` (the card, thread lines), `controls`
(the card's buttons and menus), `forms` (its modals), `details` (`/incident show`), `changes` (what a
change needs, when it is refused, what it sends), `parsing`, `planning` (calendar occurrences →
actions). I/O parts: `webhook` (the HTTP route), `effects` (the Slack side, on the worker), `incidents`,
`incident_commands` and `card_actions` (commands, buttons, menus, modals), `lookups` (what a request
names, in PagerDuty), `change_job` (changes, on the worker), `oncall`, `calendar_sync` (the periodic job).
"""
