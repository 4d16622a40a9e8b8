"""The Slack emulator's workspace directory: its people, channels and user groups, with the Web API
methods that read them (users.info, users.lookupByEmail, conversations.info, usergroups.users.list).

Seeded from sandbox/credentials.py; tests change it at run time (`set_group_members`, `users[...]`).
"""

from __future__ import annotations

import threading
from typing import Any

from sandbox import credentials


class SlackDirectory:
    """Mixed into SlackEmulator, whose lock (`_lock`) guards it too."""

    _lock: threading.RLock

    def _init_directory(self) -> None:
        self.users: dict[str, dict[str, Any]] = {uid: dict(u) for uid, u in credentials.USERS.items()}
        self.channels: dict[str, str] = dict(credentials.CHANNELS)
        self.groups: dict[str, list[str]] = {gid: list(users) for gid, users in credentials.GROUPS.items()}

    def set_group_members(self, group_id: str, users: list[str]) -> None:
        """Make `users` the members of the user group `group_id` (created if new), as an admin would."""
        with self._lock:
            self.groups[group_id] = list(users)

    def api_conversations_info(self, args):
        channel = str(args.get("channel") or "")
        name = self.channels.get(channel)
        if name is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": {"id": channel, "name": name, "is_channel": True, "is_member": True}}

    def api_users_info(self, args):
        uid = str(args.get("user") or "")
        user = self.users.get(uid)
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {
            "ok": True,
            "user": {
                "id": uid,
                "name": user["name"],
                "real_name": user["real_name"],
                "tz": user["tz"],
                "profile": {"email": user["email"], "real_name": user["real_name"]},
            },
        }

    def api_users_lookupByEmail(self, args):
        email = str(args.get("email") or "")
        for uid, user in self.users.items():
            if user["email"] == email:
                return self.api_users_info({"user": uid})
        return {"ok": False, "error": "users_not_found"}

    def api_usergroups_users_list(self, args):
        """The members of a user group (a form body: Slack takes no JSON body for this method)."""
        group = str(args.get("usergroup") or "")
        if not group:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": ["[ERROR] missing required field: usergroup"]},
            }
        with self._lock:
            members = self.groups.get(group)
            if members is None:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(members)}
