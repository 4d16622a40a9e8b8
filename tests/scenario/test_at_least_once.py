"""Nothing accepted is lost: webhook events admitted with 202 and Acknowledge / Resolve clicks on incident
cards (signed `block_actions`, each answered "Acknowledging …") are drained by worker processes that are
killed with SIGKILL at random moments, and Redis (append-only file, fsync always) is killed and restarted
once in the middle. Every event ends up with its one Slack card; every click's change is made once in
PagerDuty (the emulator counts the PUTs), the card's thread says it once, and its requester is told the
outcome, never another one (bot.queue_delivery puts back what a dead worker held; the effect's claim and
the change request's recorded steps let another worker take over a dead worker's work without repeating
it)."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from sandbox.pagerduty_world import SERVICE_ID
from sandbox.stack import RedisServer
from tests.scenario.test_webhook_endpoint import NEW, OLD, deliver, v3
from tests.support import click, ephemerals, find_button, http, replies, wait_for

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 700  # incident.triggered webhooks admitted (202)
CLICKED = 200  # incidents #1..#200 are in the PagerDuty emulator, and their cards are clicked Acknowledge
RESOLVED = range(1, CLICKED + 1, 2)  # half of them clicked Resolve too, once acknowledged: 300 clicks
UP_FRONT = 400  # events admitted before the first worker starts; the rest arrive among the clicks
KILLS = 6  # workers killed at random moments (the Redis restart after the second)
CLICKER = "U_BOB"  # Bob Operator, bob@example.com in PagerDuty
POLICY = """
pagerduty:
  effect_claim_seconds: 5
roles:
  responders:
    members: [U_BOB]
    permissions: [incident.ack, incident.resolve]
"""
EMPTY_CALENDAR = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\nEND:VCALENDAR\n"


def start_worker(env: dict, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "ab")  # noqa: SIM115 - the worker's log, closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker", "--threads", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )


def card_messages(bot) -> dict[int, list]:
    """Incident number → the cards posted for it."""
    found: dict[int, list] = {}
    for m in bot.emulator("slack").channel_messages("C_OPS"):
        hit = None if m.thread_ts else re.match(r":\w+: #(\d+) Test incident", m.text)
        if hit:
            found.setdefault(int(hit.group(1)), []).append(m)
    return found


def cards(bot) -> Counter:
    """Incident number → how many cards were posted for it."""
    return Counter({n: len(ms) for n, ms in card_messages(bot).items()})


def told(bot) -> Counter:
    """What the clicker was told (each click's reply and its outcome), text → how many times."""
    return Counter(ephemerals(bot.emulator("slack"), CLICKER))


def done(kind: str, n: int) -> str:
    return f":white_check_mark: #{n} {kind} in PagerDuty as bob@example.com."


def outcomes(bot) -> int:
    """Clicks whose change the requester has been told was made."""
    return sum(1 for text in told(bot) if text.startswith(":white_check_mark: #"))


def settled(bot, polls: int) -> bool:
    """Nothing left to do, `polls` times in a row: no PagerDuty webhook waiting to be delivered, no job
    waiting (periodic ones aside) or held by a worker (a change job's webhook is emitted while the job
    is held; a delivered webhook's job is queued before the delivery ends)."""
    pd, queue = bot.emulator("pagerduty"), bot.services.queue
    for _ in range(polls):
        if pd.webhooks.pending() or queue.pending_requests() or queue.huey.storage.held():
            return False
        time.sleep(0.05)
    return True


class Clicker(threading.Thread):
    """Clicks Acknowledge on the cards of the emulator's incidents as they appear, and Resolve on half of
    them once PagerDuty has them acknowledged, admitting the remaining webhook events among the clicks;
    `gate` is held around the Redis restart (nothing is sent while the store is away)."""

    def __init__(self, bot, incidents: dict[int, str], events: list[int]):
        super().__init__(name="clicker", daemon=True)
        self.bot, self.incidents, self.events = bot, incidents, list(events)
        self.gate = threading.Lock()
        self.stop = threading.Event()
        self.acked: set[int] = set()
        self.resolved: set[int] = set()
        self.refused: list[str] = []  # clicks or events never admitted (the test fails on any)
        self.not_admitted: list[str] = []  # answers other than admission, each followed by a resend
        self.in_flight_at_kills: list[int] = []

    @property
    def clicks(self) -> int:
        return len(self.acked) + len(self.resolved)

    @property
    def finished(self) -> bool:
        return not self.events and len(self.acked) == CLICKED and len(self.resolved) == len(RESOLVED)

    def run(self) -> None:
        while not self.stop.is_set() and not self.finished:
            with self.gate:
                try:
                    self._step()
                except Exception as exc:  # noqa: BLE001 - reported by the test, which fails on it
                    self.refused.append(repr(exc))
                    return
            time.sleep(0.02)

    def _step(self) -> None:
        for n in self.events[:2]:
            body = v3("incident.triggered", n)  # redelivered as it is until admitted, as PagerDuty does
            self._until_admitted(f"event {n}", 202, lambda b=body: deliver(self.bot.web_url, b))
            self.events.remove(n)
        shown = card_messages(self.bot)
        pd = self.bot.emulator("pagerduty")
        ack = [n for n in sorted(self.incidents) if n not in self.acked and n in shown][:3]
        resolve = [
            n
            for n in RESOLVED
            if n in self.acked
            and n not in self.resolved
            and pd.incidents[self.incidents[n]]["status"] == "acknowledged"
        ][:3]
        for n, action, clicked in [(n, "acknowledge", self.acked) for n in ack] + [
            (n, "resolve", self.resolved) for n in resolve
        ]:
            card = shown[n][0]
            button = find_button(card.blocks, f"pagerduty.{action}")
            self._until_admitted(
                f"{action} #{n}",
                200,
                lambda b=button, ts=card.ts: click(self.bot, b, user=CLICKER, message_ts=ts),
            )
            clicked.add(n)

    def _until_admitted(self, what: str, wanted: int, send) -> None:
        """Send until the bot admits it: a 503 (the store's connections of before the Redis restart
        failing once) is answered by sending again, as PagerDuty does and as a user clicks again."""
        for _ in range(10):
            status = send().status
            if status == wanted:
                return
            self.not_admitted.append(f"{what}: {status}")
            time.sleep(0.2)
        self.refused.append(what)


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_admitted_webhook_events_and_clicks_survive_worker_sigkills_and_a_redis_restart(
    make_bot, tmp_path, backend
):
    server = RedisServer(persistent=True).start() if backend == "redis" else None
    try:
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY)
        calendar = tmp_path / "empty.ics"
        calendar.write_text(EMPTY_CALENDAR)
        bot = make_bot(
            redis_url=server.url if server else None,
            emulators=["slack", "pagerduty"],
            worker=False,
            env={
                "PAGERDUTY_WEBHOOK_SECRETS": f"{NEW},{OLD}",
                "CHATOPS_CONFIG": str(policy),
                "CALENDAR_ICS_URLS": str(calendar),
            },
        )
        pd, slack = bot.emulator("pagerduty"), bot.emulator("slack")
        api = bot.services.adapter("pagerduty")
        incidents: dict[int, str] = {}
        for n in range(1, CLICKED + 1):  # PagerDuty POSTs each one's incident.triggered to the bot
            created = api.create_incident(f"Test incident {n}", SERVICE_ID, incident_key=f"kill-test-{n}")
            assert created["incident_number"] == n
            incidents[n] = created["id"]
        for n in range(CLICKED + 1, UP_FRONT + 1):
            assert deliver(bot.web_url, v3("incident.triggered", n)).status == 202
        assert pd.webhooks.drain(60)
        assert [d["status"] for d in pd.webhooks.delivered] == [202] * CLICKED
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(bot.env, PYTHONPATH=str(ROOT), CHATOPS_QUEUE_DEAD_AFTER="2", CHATOPS_LOG_LEVEL="WARNING")
        rng = random.Random(int(os.environ.get("KILL_SEED", "11")))
        clicker = Clicker(bot, incidents, list(range(UP_FRONT + 1, EVENTS + 1)))
        clicker.start()
        try:
            for round_ in range(KILLS):
                worker = start_worker(env, tmp_path / f"worker{round_}.log")
                try:
                    before = sum(cards(bot).values()) + outcomes(bot)
                    wait_for(
                        lambda b=before: sum(cards(bot).values()) + outcomes(bot) > b,
                        60,
                        message="this worker draining",
                    )
                    time.sleep(rng.uniform(0.1, 1.0))  # a random moment in the drain
                finally:
                    worker.kill()
                    worker.wait(10)
                clicker.in_flight_at_kills.append(clicker.clicks - outcomes(bot))
                if round_ == 1 and server is not None:  # and Redis once, with everything written on disk
                    with clicker.gate:
                        pd.webhooks.enabled = False  # PagerDuty's deliveries wait while Redis is away
                        server.kill()
                        server.start()
                        wait_for(lambda: http("GET", bot.web_url + "/healthz").status == 200, 30)
                        pd.webhooks.enabled = True
            assert sum(cards(bot).values()) < EVENTS, "the kills came too late to test anything"
            assert any(clicker.in_flight_at_kills), "no kill came while a click's change was under way"
            last = start_worker(env, tmp_path / "worker-last.log")
            try:
                clicker.join(60)
                assert clicker.finished and not clicker.refused, clicker.refused
                wait_for(lambda: len(cards(bot)) == EVENTS, 60, message="every event's card")
                wait_for(lambda: settled(bot, 3), 60, message="the queue drained with nothing held")
            finally:
                last.kill()
                last.wait(10)
        finally:
            clicker.stop.set()
            clicker.join(30)

        found = cards(bot)
        assert sorted(found) == list(range(1, EVENTS + 1))  # no event lost
        duplicated = {n: c for n, c in found.items() if c > 1}
        assert duplicated == {}, duplicated

        puts: dict[str, Counter] = {i: Counter() for i in incidents.values()}
        for call in pd.calls_named("PUT /incidents/{id}"):
            puts[call.request.path.rsplit("/", 1)[-1]][call.request.json()["incident"].get("status")] += 1
        said, shown = told(bot), card_messages(bot)
        wrong: dict[int, list] = {}
        for n, incident_id in incidents.items():
            resolved = n in RESOLVED
            want_puts = Counter({"acknowledged": 1, **({"resolved": 1} if resolved else {})})
            want_told = {
                f":hourglass_flowing_sand: Acknowledging `#{n}` in PagerDuty…": 1,
                done("acknowledged", n): 1,
            }
            if resolved:
                want_told[f":hourglass_flowing_sand: Resolving `#{n}` in PagerDuty…"] = 1
                want_told[done("resolved", n)] = 1
            got_told: Counter = Counter()
            for text, count in said.items():
                # a click on a card whose record a killed worker had not written yet names the id
                text = text.replace(f"`{incident_id}`", f"`#{n}`")
                if f"#{n}`" in text or f"#{n} " in text:
                    # The outcome is an ephemeral message, which Slack cannot take back or be asked
                    # about: a worker killed after telling it and before writing that down tells it
                    # again, so it is counted as told (never lost, never another outcome).
                    got_told[text] += 1 if text.startswith(":white_check_mark:") else count
            thread = Counter(r.text for r in replies(slack, thread_ts=shown[n][0].ts))
            want_thread = Counter(
                {"*Bob Operator* acknowledged the incident.\n_Requested from Slack by <@U_BOB>._": 1}
            )
            if resolved:
                want_thread["*Bob Operator* resolved the incident.\n_Requested from Slack by <@U_BOB>._"] = 1
            status = "resolved" if resolved else "acknowledged"
            if (puts[incident_id], dict(got_told), thread, pd.incidents[incident_id]["status"]) != (
                want_puts,
                want_told,
                want_thread,
                status,
            ):
                wrong[n] = [
                    dict(puts[incident_id]),
                    dict(got_told),
                    dict(thread),
                    pd.incidents[incident_id]["status"],
                    [e["type"] for e in pd.incidents[incident_id]["log"]],
                ]
        assert wrong == {}, wrong  # each click's change once in PagerDuty and in the thread, told
    finally:
        if server is not None:
            server.stop()
