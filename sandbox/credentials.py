"""The sandbox's made-up credentials. The emulators check them exactly as the real services would."""

SLACK_BOT_TOKEN = "xoxb-sandbox-token"
SLACK_SIGNING_SECRET = "sandbox-signing-secret"
SLACK_TEAM_ID = "T0SANDBOX"
ALIBABA_ACCESS_KEY_ID = "LTAIsandboxKEY"
ALIBABA_ACCESS_KEY_SECRET = "sandbox-access-key-secret"
REGION_ID = "cn-hangzhou"
PAGERDUTY_API_KEY = "u+sandbox-pagerduty-key"
PAGERDUTY_FROM_EMAIL = "oncall-bot@example.com"
PAGERDUTY_WEBHOOK_SECRET = "sandbox-webhook-secret"
MNS_QUEUE = "ecs-events"

# People and channels of the sandbox workspace.
USERS = {
    "U_ALICE": {
        "name": "alice",
        "real_name": "Alice Admin",
        "email": "alice@example.com",
        "tz": "Europe/Berlin",
    },
    "U_BOB": {"name": "bob", "real_name": "Bob Operator", "email": "bob@example.com", "tz": "Asia/Shanghai"},
    "U_CAROL": {
        "name": "carol",
        "real_name": "Carol Viewer",
        "email": "carol@example.com",
        "tz": "America/New_York",
    },
    "U_DAVE": {
        "name": "dave",
        "real_name": "Dave Developer",
        "email": "dave@example.com",
        "tz": "Europe/London",
    },
    "U_ERIN": {"name": "erin", "real_name": "Erin SRE", "email": "erin@example.com", "tz": "Asia/Tokyo"},
}
# Slack user groups (usergroups.users.list) and their members.
GROUPS = {"S_DEVS": ["U_DAVE"], "S_SRE": ["U_BOB", "U_ERIN"]}
CHANNELS = {"C_OPS": "ops", "C_DEV": "dev", "C_ALERTS": "alerts"}
ADMINS = ("U_ALICE",)
# What each person may do under sandbox/data/policy.yaml (the console's `users` shows it).
ROLES = {
    "U_ALICE": "admin",
    "U_BOB": "sre",
    "U_CAROL": "read-only",
    "U_DAVE": "developer (dev and staging instances only)",
    "U_ERIN": "sre",
}
