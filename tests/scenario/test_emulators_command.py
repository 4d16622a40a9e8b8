"""`chatops emulators` for a bot started separately: the PagerDuty emulator delivers its webhooks to
`--bot-url`, and the printed hints say where they go and how to read what the bot posted."""

from __future__ import annotations

import json
import ssl
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sandbox import credentials
from sandbox.pagerduty_emulator import SERVICE_ID
from tests.support import emulators_command, wait_for


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self):  # noqa: N802 - the http.server name
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.received.append((self.path, body))
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhooks_go_to_the_bot_url_and_the_hints_say_so(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bot_url = f"http://127.0.0.1:{server.server_port}"
    try:
        with emulators_command("--bot-url", bot_url, "--data-dir", str(tmp_path)) as (proc, urls):
            hints: list[str] = []
            while not any("conversations.history" in h for h in hints) and len(hints) < 100:
                line = proc.stderr.readline()
                assert line, "chatops emulators stopped before printing its hints"
                hints.append(line)
            assert any(f"{bot_url}/pagerduty/webhook" in h for h in hints)
            assert any("conversations.history" in h for h in hints)
            body = {
                "incident": {
                    "type": "incident",
                    "title": "Disk full",
                    "service": {"id": SERVICE_ID, "type": "service_reference"},
                }
            }
            req = urllib.request.Request(
                urls["pagerduty"] + "/incidents",
                data=json.dumps(body).encode(),
                method="POST",
                headers={
                    "Authorization": f"Token token={credentials.PAGERDUTY_API_KEY}",
                    "From": credentials.PAGERDUTY_FROM_EMAIL,
                    "Content-Type": "application/json",
                    "Accept": "application/vnd.pagerduty+json;version=2",
                },
            )
            insecure = ssl.create_default_context()
            insecure.check_hostname, insecure.verify_mode = (
                False,
                ssl.CERT_NONE,
            )  # the emulator's own cert, on loopback
            with urllib.request.urlopen(req, context=insecure, timeout=10) as resp:
                assert resp.status == 201
            got = wait_for(lambda: _Receiver.received, 20, message="the webhook")
            path, payload = got[0]
            assert (
                path == "/pagerduty/webhook"
                and json.loads(payload)["event"]["event_type"] == "incident.triggered"
            )
    finally:
        server.shutdown()
