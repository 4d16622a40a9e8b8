"""Bolt glue: everything Slack POSTs to /slack/events goes through one Bolt App.

Order of checks: size (done by the web layer) → signature and timestamp (401) → body shape (400) →
Bolt dispatch. Bolt runs with `process_before_response=True`: the listener finishes before the HTTP
answer, so what a slash command acks with is exactly what the handler returned; anything slow has
already been handed to the task queue by then.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from slack_bolt import App, BoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.commands import MAX_METADATA_CHARS, Reply, dispatch_action, dispatch_command, dispatch_view
from bot.config import check_required
from bot.errors import ChatOpsError, new_correlation_id
from bot.store import ClaimStatus

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


EVENT_DEDUPE_SECONDS = 3600  # Slack retries for minutes, not hours
MAX_TIMESTAMP_DIGITS = 12  # seconds since the epoch, with room to spare
MAX_SIGNATURE_CHARS = 128  # "v0=" and 64 hex digits


class BadRequest(Exception):
    """The body is signed but not something Slack sends."""


def _strict_json(text: str, what: str) -> Any:
    """JSON as Slack sends it: no NaN / Infinity, no absurd nesting (a RecursionError is a 400 too)."""

    def refuse(constant: str) -> Any:
        raise BadRequest(f"{what} contains {constant}, which is not JSON")

    if text.count("[") + text.count("{") > 20_000:
        raise BadRequest(f"{what} is nested or repeated beyond anything Slack sends")
    try:
        return json.loads(text or "null", parse_constant=refuse)
    except RecursionError:
        raise BadRequest(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"{what} is not valid JSON") from exc


# Interactive payloads and events this app handles; anything else signed is acknowledged and ignored.
HANDLED_PAYLOADS = frozenset({"block_actions", "view_submission"})
HANDLED_EVENTS = frozenset({"app_mention", "app_home_opened"})


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64


def check_payload(payload: dict[str, Any]) -> bool:
    """True when Bolt should see this interactive payload; False to acknowledge and ignore it (a kind
    this app does not handle). Raises BadRequest for a handled kind in a shape Slack never sends."""
    if payload["type"] not in HANDLED_PAYLOADS:
        return False
    user = payload.get("user")
    if not isinstance(user, dict) or not _is_id(user.get("id")):
        raise BadRequest(f"{payload['type']} needs a user object with an id")
    if payload["type"] == "view_submission":
        return _check_view(payload)
    for name in ("channel", "container", "message", "team"):
        if payload.get(name) is not None and not isinstance(payload[name], dict):
            raise BadRequest(f"block_actions: {name} must be an object")
    channel = payload.get("channel") or {}
    if "id" in channel and not _is_id(channel["id"]):
        raise BadRequest("block_actions: channel.id must be an id")
    if payload.get("response_url") is not None and not isinstance(payload["response_url"], str):
        raise BadRequest("block_actions: response_url must be a string")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or len(actions) > 25:
        raise BadRequest("block_actions needs a list of 1 to 25 actions")
    for act in actions:
        if not isinstance(act, dict) or not isinstance(act.get("action_id"), str) or not act["action_id"]:
            raise BadRequest("every action needs an action_id string")
        if act.get("value") is not None and not isinstance(act["value"], str):
            raise BadRequest("an action's value must be a string")
        _check_choice(act, "an action")
    return True


def _check_choice(element: dict[str, Any], what: str) -> None:
    """An option chosen in a menu, or a user chosen in a user picker, as Slack sends them."""
    option = element.get("selected_option")
    if option is not None and not (isinstance(option, dict) and isinstance(option.get("value"), str)):
        raise BadRequest(f"{what}'s selected_option must be an object with a string value")
    if element.get("selected_user") is not None and not _is_id(element["selected_user"]):
        raise BadRequest(f"{what}'s selected_user must be a user id")


def _check_view(payload: dict[str, Any]) -> bool:
    view = payload.get("view")
    if not isinstance(view, dict) or not isinstance(view.get("callback_id"), str):
        raise BadRequest("view_submission needs a view object with a callback_id")
    metadata = view.get("private_metadata")
    if metadata is not None and not (isinstance(metadata, str) and len(metadata) <= MAX_METADATA_CHARS):
        raise BadRequest("view_submission: private_metadata must be a string of at most 3000 characters")
    state = view.get("state") or {}
    values = state.get("values", {}) if isinstance(state, dict) else None
    if not isinstance(values, dict) or len(values) > 100:
        raise BadRequest("view_submission: state.values must be an object of at most 100 blocks")
    for block in values.values():
        if not isinstance(block, dict):
            raise BadRequest("view_submission: every block of state.values must be an object")
        for element in block.values():
            if not isinstance(element, dict):
                raise BadRequest("view_submission: every input of state.values must be an object")
            if element.get("value") is not None and not isinstance(element["value"], str):
                raise BadRequest("view_submission: an input's value must be a string")
            _check_choice(element, "an input")
    return True


def check_event(data: dict[str, Any]) -> bool:
    """The same for an Events API body: url_verification and the handled events go on; other events
    are acknowledged and ignored."""
    if data["type"] == "url_verification":
        if not isinstance(data.get("challenge"), str):
            raise BadRequest("url_verification needs a challenge string")
        return True
    if data["type"] != "event_callback":
        return False
    event = data.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise BadRequest("event_callback needs an event object with a type")
    if event["type"] not in HANDLED_EVENTS:
        return False
    if event["type"] == "app_home_opened" and not _is_id(event.get("user")):
        raise BadRequest("app_home_opened needs a user")
    if event["type"] == "app_mention" and not (
        _is_id(event.get("channel")) and isinstance(event.get("ts"), str)
    ):
        raise BadRequest("app_mention needs a channel and a ts")
    return True


def parse_slack_body(body: str, content_type: str) -> tuple[str, dict[str, Any]]:
    """What a signed body is ("event", "payload", "command" or "ssl_check") and its data. Raises
    BadRequest for anything Slack would never send."""
    if content_type.startswith("application/json"):
        data = _strict_json(body, "the body")
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise BadRequest("an Events API body must be a JSON object with a type")
        return "event", data
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            form = {
                k: v[0] for k, v in parse_qs(body, keep_blank_values=True, strict_parsing=bool(body)).items()
            }
        except ValueError as exc:
            raise BadRequest("body is not form-encoded") from exc
        if "payload" in form:
            payload = _strict_json(form["payload"], "payload")
            if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
                raise BadRequest("payload must be a JSON object with a type")
            return "payload", payload
        if "command" in form:
            if not str(form["command"]).startswith("/"):
                raise BadRequest("command must start with /")
            return "command", form
        if form.get("ssl_check"):
            return "ssl_check", form
        raise BadRequest("neither a slash command nor an interactive payload")
    raise BadRequest(f"unsupported content type {content_type or '(none)'}")


class _DropClientTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment even when given a client, then warns that the
    token is unused; the client carries that same token, so the notice is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.App").addFilter(_DropClientTokenNotice())


class SlackGateway:
    def __init__(self, services: Services):
        self.services = services
        settings = services.settings
        check_required(settings)  # the same check `chatops worker` runs at start
        self.verifier = SignatureVerifier(settings.secret("SLACK_SIGNING_SECRET"))
        self.app = App(
            client=services.slack_client,
            signing_secret=settings.secret("SLACK_SIGNING_SECRET"),
            token_verification_enabled=False,
            # The signature was verified by `handle` before Bolt sees the request (a 401 there runs
            # nothing); verifying it again in Bolt's middleware would only cost a second HMAC.
            request_verification_enabled=False,
            process_before_response=True,
            raise_error_for_unhandled_request=False,
        )
        self._register()

    # HTTP entry -----------------------------------------------------------------------------------
    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _json(400, {"error": "body is not UTF-8"})
        timestamp = lower.get("x-slack-request-timestamp", "").strip()
        signature = lower.get("x-slack-signature", "").strip()
        # Checked before the verifier sees them: a timestamp of 400 digits or a signature that is not
        # ASCII must be a 401 like any other bad signature, never an exception.
        well_formed = (
            timestamp.isascii()
            and timestamp.isdigit()
            and len(timestamp) <= MAX_TIMESTAMP_DIGITS
            and signature.isascii()
            and signature.startswith("v0=")
            and len(signature) <= MAX_SIGNATURE_CHARS
        )
        if not well_formed or not self.verifier.is_valid(body=text, timestamp=timestamp, signature=signature):
            return _json(401, {"error": "invalid request"})
        try:
            kind, data = parse_slack_body(text, lower.get("content-type", ""))
            handled = {"event": check_event, "payload": check_payload}.get(kind, lambda _data: True)(data)
        except BadRequest as exc:
            return _json(400, {"error": str(exc)})
        if not handled:  # signed, well-formed, of a kind this app does not act on
            return _json(200, {"ok": True, "ignored": str(data.get("type"))[:40]})
        event_id = data.get("event_id") if data.get("type") == "event_callback" else None
        if not isinstance(event_id, str) or not event_id:
            return self._dispatch(text, lower)
        # Slack sends an Events API delivery again (X-Slack-Retry-Num) when its answer was slow or lost:
        # its effect happens once per event_id.
        events = self.services.deduper("slack-event", pending_ttl=60.0, done_ttl=EVENT_DEDUPE_SECONDS)
        claim = events.claim(event_id[:128])
        if claim.status is not ClaimStatus.CLAIMED:
            self.services.metrics.dedupe_hits.labels("slack-event", claim.status.value).inc()
            return _json(200, {"ok": True, "duplicate": True})
        try:
            answer = self._dispatch(text, lower)
        except BaseException:
            events.release(event_id[:128], str(claim.token))
            raise
        events.confirm(event_id[:128], str(claim.token))
        return answer

    def _dispatch(self, text: str, lower: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        resp = self.app.dispatch(BoltRequest(body=text, headers={k: [v] for k, v in lower.items()}))
        out_headers = {k: (v[0] if isinstance(v, list) else v) for k, v in resp.headers.items()}
        out_headers.pop("content-length", None)
        return resp.status, out_headers, (resp.body or "").encode()

    # Listeners ------------------------------------------------------------------------------------
    def _register(self) -> None:
        services = self.services

        @self.app.command(re.compile(r"^/"))
        def on_command(ack, body):
            reply = dispatch_command(services, body)
            ack(**reply.as_ack())

        @self.app.action(re.compile(r".*"))
        def on_action(ack, body):
            ack()
            for reply in dispatch_action(services, body):
                self._deliver(body, reply)

        @self.app.view(re.compile(r".*"))
        def on_view(ack, body):
            answer = dispatch_view(services, body)
            if answer.errors:
                ack(response_action="errors", errors=answer.errors)
                return
            ack()
            if answer.reply is not None and answer.channel_id:
                self._post_ephemeral(answer.channel_id, (body.get("user") or {}).get("id"), answer.reply)

        @self.app.event("app_mention")
        def on_mention(event, say):
            say(
                text="Hi! Try `/ecs help`, `/incident list` or `/oncall`.",
                thread_ts=event.get("thread_ts") or event.get("ts"),
            )

        @self.app.event("app_home_opened")
        def on_home(event, client):
            from bot.home import home_view

            client.views_publish(user_id=event["user"], view=home_view(services, event["user"]))

        @self.app.event(re.compile(r".*"))
        def on_other_event():
            return None

    def _deliver(self, body: dict[str, Any], reply: Reply) -> None:
        response_url = body.get("response_url")
        try:
            if response_url:
                services_slack = self.services.slack
                services_slack.respond(response_url, reply.as_response())
            else:
                channel = (body.get("channel") or {}).get("id")
                self._post_ephemeral(channel, (body.get("user") or {}).get("id"), reply)
        except ChatOpsError as exc:
            log.warning("could not deliver a reply", extra={"error": str(exc)})
        except Exception:  # noqa: BLE001 - delivery failures must not turn an ack into a 500
            log.exception("bug while delivering a reply", extra={"correlation_id": new_correlation_id()})

    def _post_ephemeral(self, channel: str | None, user: str | None, reply: Reply) -> None:
        if not (channel and user):
            return
        try:
            self.services.slack.post_ephemeral(channel, user, reply.text, reply.blocks)
        except ChatOpsError as exc:
            log.warning("could not deliver a reply", extra={"error": str(exc)})


def _json(status: int, obj: dict) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps(obj).encode()
