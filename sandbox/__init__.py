"""Wire-level emulators of Slack, ECS (+ Cloud Assistant, SLB), MNS and PagerDuty, and the console."""
