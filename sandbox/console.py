"""The sandbox console: talk to the bot the way Slack does, through the real HTTP path.

A typed `/command text` is form-encoded, signed with the signing secret and POSTed to /slack/events;
`click N` sends the block_actions payload of button N. What the bot answers or posts (in the HTTP
answer, through response_url, or through the Web API) is shown as text with numbered buttons.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from typing import Any, TextIO

import sandbox.console_clock  # noqa: F401 - registers the console's `clock` command
from sandbox import credentials
from sandbox.console_buttons import CLICK_USAGE, ButtonBoard
from sandbox.console_commands import EXTRA_COMMANDS
from sandbox.console_slack import click_body, signed_post, slash_body
from sandbox.render import mrkdwn, render_blocks

HELP = """\
Console commands (everything else that starts with / goes to the bot as a slash command):
  /ecs help                 a slash command, signed and POSTed to /slack/events as Slack does
  click N                   press button [N] of the last message shown with buttons
  click N of M              press button [N] of an older message: "(message M)" follows its buttons
                            (buttons are numbered per message from [1]; [N] *Label is the suggested
                            button, Slack's green one; [N] !Label a dangerous one, Slack's red one)
  as USER                   act as another user: alice (admin), bob and erin (SREs: they approve
                            each other's prod changes), dave (developer: dev instances only),
                            carol (read-only); `users` shows their Slack user groups
  in CHANNEL                post from another channel: ops, dev, alerts
  wait [SECONDS]            let background jobs finish (default up to 60 s) and show what they posted
  expect TEXT [SECONDS]     wait until something shown contains TEXT; the step fails otherwise
  messages [CHANNEL]        the current messages of a channel
  users                     who is who in this workspace
{extra}  help                      this text
  quit                      leave (Ctrl-D works too)
What the bot posts, edits or answers later (a job's report, an ECS event, an incident) shows up by itself.
`clock` moves only the bot's sense of the time of day (what its schedules go by); waits stay real and
the emulated cloud keeps real time.
A script (--script FILE or -) is the same lines, one per line; '#' starts a comment; what arrives between
two steps is printed before the next step's line.
"""


def help_text() -> str:
    """HELP with the usage lines of the registered extra commands (`inject`, `clock`, ...)."""
    return HELP.format(extra="".join(f"  {usage}\n" for usage, _ in EXTRA_COMMANDS.values()))


class Console:
    def __init__(self, bot, out: TextIO, user: str = "U_ALICE", channel: str = "C_OPS"):
        self.bot = bot
        self.slack = bot.emulator("slack")
        self.out = out
        self.user = user
        self.channel = channel
        self.buttons = ButtonBoard()
        self.seen_seq = self.slack.last_seq
        self.seen_views = len(self.slack.views)
        self.shown_text: list[str] = []
        self.names = {uid: u["name"] for uid, u in credentials.USERS.items()}
        self.names.update(credentials.CHANNELS)
        self.names["UBOT"] = "chatops"
        # Output and the bookkeeping of what was shown are shared with the live output thread
        # (sandbox/console_live.py), which shows what arrives while nobody types.
        self.lock = threading.RLock()
        self.step_lock = threading.Lock()  # held while a typed line runs

    # output ----------------------------------------------------------------------------------------
    def say(self, text: str = "", from_bot: bool = False) -> None:
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()
            if from_bot:
                self.shown_text.extend(text.split("\n"))

    def show_message(
        self, label: str, text: str, blocks: list[dict], channel: str | None, ts: str | None, ephemeral: bool
    ) -> None:
        pending = self.buttons.start(channel, ts, ephemeral, {"ts": ts, "text": text, "blocks": blocks})
        lines = (
            render_blocks(blocks, pending.add, self.names)
            if blocks
            else mrkdwn(text, self.names).splitlines()
        )
        number = self.buttons.finish(pending)
        if number is not None:  # name the message after its last row of buttons: `click N of M` reaches it
            last = max(i for i, line in enumerate(lines) if f"[{len(pending.buttons)}] " in line)
            lines[last] += f"   (message {number})"
        self.say("\n".join([label, *("    " + line for line in lines or [""])]), from_bot=True)  # one write

    def _chan(self, channel: str | None) -> str:
        return "#" + self.names.get(channel or "", channel or "?")

    def show_new_effects(self) -> int:
        """Show what the bot did since the last look; how many effects that was."""
        with self.lock:
            effects = self.take_new_effects()
            self.show_effects(effects)
            return len(effects) + self.show_new_forms()

    def show_new_forms(self) -> int:
        """Say so when the bot opened a modal: the console has none (each has a slash command)."""
        opened = self.slack.views[self.seen_views :]
        self.seen_views += len(opened)
        for view in (v["view"] for v in opened if v.get("kind") == "modal"):
            title = ((view.get("title") or {}).get("text")) or "a form"
            self.say(
                f"(the bot opened the form “{title}”; the console cannot fill in forms: the command's "
                "`help` names the sub-command that does the same)",
                from_bot=True,
            )
        return len(opened)

    def has_new_effects(self) -> bool:
        return self.slack.last_seq > self.seen_seq

    def take_new_effects(self) -> list[Any]:
        """The effects not looked at yet that this console's user can see (marks them looked at)."""
        with self.lock:
            effects = self.slack.effects_since(self.seen_seq)
            if effects:
                self.seen_seq = max(self.seen_seq, *(e.seq for e in effects))
            return [e for e in effects if not (e.kind == "ephemeral" and e.user != self.user)]

    def show_effects(self, effects: list[Any]) -> None:
        for e in effects:
            where = self._chan(e.channel)
            if e.kind == "post":
                label = f"[{where}] chatops" + (" (in thread)" if e.thread_ts else "") + ":"
            elif e.kind == "update":
                label = f"[{where}] chatops (edited):"
            elif e.kind == "ephemeral":
                label = f"[{where}] chatops (only you):"
            elif e.kind == "delete":
                self.buttons.retire((e.channel, e.ts) if e.channel and e.ts else None)
                self.say(f"[{where}] (a message was deleted)")
                continue
            else:
                label = f"[{where}] chatops shared a file:"
            self.show_message(label, e.text, e.blocks, e.channel, e.ts, e.kind == "ephemeral")

    # Slack-shaped requests -------------------------------------------------------------------------
    def slash(self, command: str, text: str) -> bool:
        response_url = self.slack.new_response_url(self.channel, self.user)
        body = slash_body(
            command, text, self.channel, self.user, self.names.get(self.user, self.user), response_url
        )
        return self._show_answer(*signed_post(self.bot.web_url, body))

    def _show_answer(self, status: int, ctype: str, payload: str) -> bool:
        if status >= 400:
            self.say(f"(the bot answered HTTP {status}: {payload[:300]})")
            return False
        ok = True
        if payload:
            try:
                data = (
                    json.loads(payload) if "json" in ctype or payload.startswith("{") else {"text": payload}
                )
            except ValueError:
                data = {"text": payload}
            text, blocks = str(data.get("text") or ""), data.get("blocks") or []
            if text or blocks:
                where = self._chan(self.channel)
                ephemeral = data.get("response_type") != "in_channel"
                self.show_message(
                    f"[{where}] chatops{' (only you)' if ephemeral else ''}:",
                    text,
                    blocks,
                    self.channel,
                    None,
                    ephemeral,
                )
                ok = ":boom:" not in text
        self.settle()
        return ok

    def click(self, which: str) -> bool:
        """`which` is `N` (button N of the message shown last with buttons) or `N of M`."""
        button = self.buttons.find(which)
        if isinstance(button, str):
            return self._bad(button)
        el = button.element
        channel = button.channel or self.channel
        response_url = self.slack.new_response_url(
            channel, self.user, None if button.ephemeral else button.message_ts
        )
        body = click_body(
            element=el,
            block=button.block,
            message=button.message,
            message_ts=button.message_ts,
            ephemeral=button.ephemeral,
            channel=channel,
            user=self.user,
            user_name=self.names.get(self.user),
            response_url=response_url,
        )
        label = el.get("text", {}).get("text", "")
        self.say(
            f"({self.names.get(self.user)} clicked [{button.number}] {label} of message {button.message_number})"
        )
        return self._show_answer(*signed_post(self.bot.web_url, body))

    # waiting ---------------------------------------------------------------------------------------
    def settle(self, max_wait: float = 5.0, quiet: float = 0.4) -> None:
        """Show new effects until the queue is empty and nothing new arrived for `quiet` seconds."""
        deadline = time.monotonic() + max_wait
        last_activity = time.monotonic()
        while time.monotonic() < deadline:
            if self.show_new_effects():
                last_activity = time.monotonic()
            busy = self.bot.services.queue.pending() > 0
            if not busy and time.monotonic() - last_activity >= quiet:
                break
            time.sleep(0.05)
        self.show_new_effects()

    def expect(self, text: str, timeout: float) -> bool:
        """Pass when the bot showed TEXT since the last command (or shows it within `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            if any(text.lower() in line.lower() for line in self.shown_text[self._expect_from :]):
                break
            if time.monotonic() >= deadline:
                self.say(f"(expected to see {text!r} within {timeout:g} s; it did not appear)")
                return False
            self.show_new_effects()
            time.sleep(0.1)
        self.say(f"(seen: {text!r})")
        return True

    # the line interpreter --------------------------------------------------------------------------
    _expect_from = 0

    def execute(self, line: str) -> bool:
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        if line.startswith("/"):
            self._expect_from = len(self.shown_text)
            command, _, text = line.partition(" ")
            return self.slash(command, text.strip())
        word, _, rest = line.partition(" ")
        word = word.lower()
        if word == "help":
            self.say(help_text().rstrip())
            return True
        if word == "click":
            self._expect_from = len(self.shown_text)
            return self.click(rest) if rest.strip() else self._bad(CLICK_USAGE)
        if word == "as":
            return self._switch_user(rest.strip())
        if word == "in":
            return self._switch_channel(rest.strip())
        if word == "wait":
            seconds = float(rest) if rest.strip() else 60.0
            self.settle(max_wait=seconds, quiet=1.0)
            return True
        if word == "expect":
            parts = shlex.split(rest)
            if not parts:
                return self._bad("usage: expect TEXT [SECONDS]")
            timeout = float(parts[-1]) if len(parts) > 1 and _is_number(parts[-1]) else 30.0
            text = " ".join(parts[:-1]) if len(parts) > 1 and _is_number(parts[-1]) else " ".join(parts)
            return self.expect(text, timeout)
        if word == "messages":
            return self._messages(rest.strip())
        if word == "users":
            for uid, u in credentials.USERS.items():
                role = credentials.ROLES.get(uid, "read-only")
                groups = [gid for gid, members in self.slack.groups.items() if uid in members]
                in_groups = f"  groups: {', '.join(groups)}" if groups else ""
                self.say(f"  {u['name']:<6} {uid:<8} {role:<9} {u['email']}  ({u['tz']}){in_groups}")
            return True
        if word in EXTRA_COMMANDS:
            return EXTRA_COMMANDS[word][1](self, rest.strip())
        return self._bad(f"unknown console command {word!r}; type 'help'")

    def _bad(self, text: str) -> bool:
        self.say(f"({text})")
        return False

    def _switch_user(self, who: str) -> bool:
        for uid, u in credentials.USERS.items():
            if who in (uid, u["name"], "@" + u["name"]):
                self.user = uid
                self.say(f"(you are now {u['name']} — {uid})")
                return True
        return self._bad(
            f"unknown user {who!r}; known: " + ", ".join(u["name"] for u in credentials.USERS.values())
        )

    def _channel_id(self, name: str) -> str | None:
        name = name.lstrip("#")
        for cid, cname in credentials.CHANNELS.items():
            if name in (cid, cname):
                return cid
        return None

    def _messages(self, name: str) -> bool:
        channel = self._channel_id(name) if name else self.channel
        if channel is None:
            return self._bad(f"unknown channel {name!r}; known: " + ", ".join(credentials.CHANNELS.values()))
        shown = self.slack.channel_messages(channel)
        if not shown:
            self.say(f"({self._chan(channel)} is empty: no messages yet)")
        for m in shown:
            self.show_message(f"[{self._chan(channel)}] {m.ts}:", m.text, m.blocks, channel, m.ts, False)
        return True

    def _switch_channel(self, name: str) -> bool:
        cid = self._channel_id(name)
        if cid is None:
            return self._bad(f"unknown channel {name!r}; known: " + ", ".join(credentials.CHANNELS.values()))
        self.channel = cid
        self.say(f"(you are now in #{credentials.CHANNELS[cid]})")
        return True


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def run_script(console: Console, lines: list[str]) -> int:
    """Run lines non-interactively, echoing each; returns the number of failed steps."""
    failed = 0
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip() or line.strip().startswith("#"):
            continue
        console.show_new_effects()  # what arrived after the previous step settled belongs to it
        console.say(f"> {line}")
        if not console.execute(line):
            failed += 1
            console.say("  !! step failed")
    return failed
