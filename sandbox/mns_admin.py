"""Queue management of the MNS emulator, on the real wire format (`mnscmd createqueue`, `getqueueattr`,
`setqueueattr`, `listqueue`, `deletequeue`, and the SDK's Queue.create / get_attributes / …):

    PUT    /queues/NAME                     CreateQueue: 201 + Location; 204 when it exists with the same
                                            attributes; 409 QueueAlreadyExist when they differ
    PUT    /queues/NAME?metaoverride=true   SetQueueAttributes: 204
    GET    /queues/NAME                     GetQueueAttributes: the attributes and the message counts
    DELETE /queues/NAME                     DeleteQueue: 204
    GET    /queues                          ListQueue: x-mns-prefix, x-mns-marker, x-mns-ret-number
                                            (1-1000, default 1000), x-mns-with-meta

A mixin of MnsEmulator (sandbox/mns_emulator.py), which owns the lock, the clock and the responses.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.emulator import Request, Response
from sandbox.mns_queue import MnsQueue
from sandbox.mns_wire import (
    WireError,
    check_range,
    elements,
    parse_int,
    parse_queue_attributes,
    queue_fields,
    root,
)

QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
MAX_QUEUE_NAME = 120
MAX_LIST = 1000


class QueueAdmin:
    """Needs from its host: `queues`, `_cond`, `clock`, `base_url`, `_existing`, `_xml`, `_empty`."""

    queues: dict[str, MnsQueue]

    def admin_operations(self) -> dict[str, tuple[str, Any]]:
        """Method → (operation, fn(request, queue name, query)) for /queues/NAME."""
        return {
            "PUT": ("CreateQueue", self._create_queue),
            "GET": ("GetQueueAttributes", self._get_queue_attributes),
            "DELETE": ("DeleteQueue", self._delete_queue),
        }

    def queue_url(self, name: str) -> str:
        return f"{self.base_url}/queues/{name}"

    def _create_queue(self, req: Request, name: str, _query: dict[str, str]) -> Response:
        if len(name) > MAX_QUEUE_NAME:
            raise WireError(
                400, "QueueNameLengthError", f"The length of the queue name must be at most {MAX_QUEUE_NAME}."
            )
        if not QUEUE_NAME.match(name):
            raise WireError(
                400,
                "InvalidQueueName",
                "The queue name must start with a letter or digit and hold only letters, digits and hyphens.",
            )
        wanted = parse_queue_attributes(req.body)
        location = {"Location": self.queue_url(name)}
        with self._cond:
            found = self.queues.get(name)
            if found is None:
                self.queues[name] = MnsQueue(name, self.clock.time(), wanted)
                return self._xml(req, "CreateQueue", 201, "", headers=location)
            same = found.same_attributes(wanted)
        if not same:
            raise WireError(409, "QueueAlreadyExist", "The queue you want to create is already exist.")
        return self._empty(req, "CreateQueue", headers=location)

    def _set_queue_attributes(self, req: Request, name: str, _query: dict[str, str]) -> Response:
        queue = self._existing(name)
        changes = parse_queue_attributes(req.body)
        with self._cond:
            queue.set_attributes(changes, self.clock.time())
            self._cond.notify_all()  # a shorter retention or polling wait applies to receives in progress
        return self._empty(req, "SetQueueAttributes")

    def _get_queue_attributes(self, req: Request, name: str, _query: dict[str, str]) -> Response:
        with self._cond:
            queue = self._existing(name)
            fields = self._queue_fields(queue)
        return self._xml(req, "GetQueueAttributes", 200, root("Queue", elements(fields)))

    def _queue_fields(self, queue: MnsQueue) -> list[tuple[str, Any]]:
        now = self.clock.time()
        queue.promote(now)
        return queue_fields(queue.name, queue.current_attributes(), queue.counts(now))

    def _delete_queue(self, req: Request, name: str, _query: dict[str, str]) -> Response:
        with self._cond:
            self._existing(name)
            del self.queues[name]
            self._cond.notify_all()
        return self._empty(req, "DeleteQueue")

    def _list_queues(self, req: Request) -> Response:
        h = req.headers
        prefix, marker = h.get("x-mns-prefix", ""), h.get("x-mns-marker", "")
        limit = MAX_LIST
        if "x-mns-ret-number" in h:
            limit = check_range(
                "x-mns-ret-number", parse_int("x-mns-ret-number", h["x-mns-ret-number"]), 1, MAX_LIST
            )
        with_meta = h.get("x-mns-with-meta", "").lower() == "true"
        with self._cond:
            names = sorted(n for n in self.queues if n.startswith(prefix) and n >= marker)
            page, rest = names[:limit], names[limit:]
            entries = []
            for name in page:
                fields = [("QueueURL", self.queue_url(name))]
                if with_meta:
                    fields += self._queue_fields(self.queues[name])
                entries.append(f"<Queue>{elements(fields)}</Queue>")
        more = f"<NextMarker>{rest[0]}</NextMarker>" if rest else ""
        return self._xml(req, "ListQueue", 200, root("Queues", "".join(entries) + more))
