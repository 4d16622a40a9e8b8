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
}
CHANNELS = {"C_OPS": "ops", "C_DEV": "dev", "C_ALERTS": "alerts"}
ADMINS = ("U_ALICE",)
