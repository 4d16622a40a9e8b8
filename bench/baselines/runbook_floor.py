"""The floor for the runbooks benchmark: the least a client can do to run the same steps, nothing else.

Each run is a thread that, step after step, sends RunCommand for its one instance through the official
SDK and looks at the invocation (DescribeInvocations by InvokeId) until it is terminal. It knows what
no real engine knows, how long the command takes: its first look comes exactly then, and it looks again
every `LOOK_EVERY` seconds. It keeps no record, takes no lease, posts nothing to Slack and has no rate
limit of its own, so nothing survives a crash and nobody sees progress: it is not a peer, it is the
time any client needs on this machine against this emulator (signing, HTTP, the emulator's own work and
the agent's pick-up), measured beside the bot in the same run.

Run as a process of its own (as the bot's worker is):
    python -m bench.baselines.runbook_floor ENDPOINT KEY SECRET REGION STEPS SECONDS ID [ID …]
It prints one JSON line: {"runs": [{"instance", "started", "finished", "invoke_ids", "ok"}…],
"api_calls": n} (times are time.time()).
"""

from __future__ import annotations

import json
import sys
import threading
import time

from alibabacloud_ecs20140526 import models as ecs_models

from bench.baselines.sdk import NaiveBaseline

LOOK_EVERY = 0.05  # seconds between looks once the command's time is up
TERMINAL = ("Finished", "Failed", "PartialFailed", "Stopped")


class FloorClient(NaiveBaseline):
    def __init__(self, *connection: str):
        super().__init__(*connection)
        self._lock = threading.Lock()

    def _count(self) -> None:
        with self._lock:
            self.api_calls += 1

    def step(self, instance_id: str, command: str, seconds: float) -> tuple[str, bool]:
        """Run `command` on one instance and look until it ended: (InvokeId, finished well)."""
        self._count()
        invoke_id = self.client.run_command(
            ecs_models.RunCommandRequest(
                region_id=self.region,
                type="RunShellScript",
                command_content=command,
                content_encoding="PlainText",
                instance_id=[instance_id],
                timeout=600,
            )
        ).body.invoke_id
        time.sleep(seconds)
        while True:
            self._count()
            found = self.client.describe_invocations(
                ecs_models.DescribeInvocationsRequest(region_id=self.region, invoke_id=invoke_id)
            ).body.invocations
            invocation = found.invocation[0] if found and found.invocation else None
            if invocation is not None and invocation.invoke_status in TERMINAL:
                return invoke_id, invocation.invoke_status == "Finished"
            time.sleep(LOOK_EVERY)

    def run(self, instance_id: str, steps: int, seconds: float) -> dict:
        started = time.time()
        invoke_ids, ok = [], True
        for _ in range(steps):
            invoke_id, finished = self.step(instance_id, f"sleep {seconds:g}", seconds)
            invoke_ids.append(invoke_id)
            ok = ok and finished
        return {
            "instance": instance_id,
            "started": started,
            "finished": time.time(),
            "invoke_ids": invoke_ids,
            "ok": ok,
        }


def main(argv: list[str]) -> int:
    endpoint, key, secret, region, steps, seconds, *instances = argv
    client = FloorClient(endpoint, key, secret, region)
    runs: list[dict] = []
    threads = [
        threading.Thread(
            target=lambda i=i: runs.append(client.run(i, int(steps), float(seconds))), daemon=True
        )
        for i in instances
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"runs": runs, "api_calls": client.api_calls}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
