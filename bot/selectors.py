"""Selectors: which instances a command means, and the options of power commands. Pure functions.

    SELECTOR := TERM { TERM }                  terms are ANDed
    TERM     := i-ID{,i-ID}                     instance ids (any of them)
              | NAME                            a bare word: the instance with that name
              | tag:KEY=VALUE | tag:KEY         tag has the value / tag is present (repeatable)
              | name:GLOB                       instance name glob (* ? [..])
              | status:STATUS                   running | stopped | starting | stopping | pending
              | region:REGION                   default: the bot's region

Values with spaces can be quoted: name:"web 01". Anything else is refused with the grammar.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import shlex
from dataclasses import dataclass

from bot.ecs_model import STATUSES, normalize_status
from bot.errors import UserError
from bot.render import escape

GRAMMAR = (
    "SELECTOR is one or more of (all must match):\n"
    "  `i-bp1abc…,i-bp1def…`  instance ids, comma-separated\n"
    "  `tag:KEY=VALUE`          tag KEY has VALUE (repeatable)\n"
    "  `tag:KEY`                tag KEY is present\n"
    "  `name:GLOB`              name matches, e.g. `name:web-*`\n"
    "  `NAME`                   a bare word: the instance of that name, e.g. `prod-web-03`\n"
    "  `status:STATUS`          " + " | ".join(s.lower() for s in STATUSES) + "\n"
    "  `region:REGION`          default: the bot's region\n"
    "Example: `tag:env=dev name:web-*`"
)
_ID = re.compile(r"^i-[a-z0-9]{4,40}$")
_TAG_KEY = re.compile(r"^[^\s=,]{1,128}$")
_TAG_VALUE = re.compile(r"^[^\n]{0,128}$")
_REGION = re.compile(r"^[a-z]{2,}(-[a-z0-9]+){1,3}$")
_KEYS = ("tag", "name", "status", "region")
_BARE_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]{0,127}$")  # what ECS allows in a name, without globs


class SelectorError(UserError):
    """A malformed selector or option; the answer shows the grammar. Its message quotes what was typed,
    so it is escaped whole (the bot's own words in it carry no mrkdwn links or mentions)."""

    def __init__(self, message: str, usage: str | None = None):
        super().__init__(escape(message), usage)


@dataclass(frozen=True)
class Selector:
    ids: tuple[str, ...] = ()  # sorted, unique
    tags: tuple[tuple[str, str | None], ...] = ()  # sorted, unique; None = key present
    name: str | None = None
    status: str | None = None  # ECS spelling: Running, Stopped …
    region: str | None = None  # None: the default region

    @property
    def is_empty(self) -> bool:
        """True when nothing narrows the instances down (region alone does not)."""
        return not (self.ids or self.tags or self.name or self.status)

    def terms(self, quote=lambda value: value) -> list[str]:
        """The terms, one token each (`quote` applied to the free-text parts)."""
        out = []
        if self.ids:
            out.append(",".join(self.ids))
        out += [f"tag:{quote(k)}" + ("" if v is None else f"={quote(v)}") for k, v in self.tags]
        if self.name is not None:
            out.append(f"name:{quote(self.name)}")
        if self.status is not None:
            out.append(f"status:{self.status.lower()}")
        if self.region is not None:
            out.append(f"region:{self.region}")
        return out

    def text(self) -> str:
        """Canonical text, as a person would type it (`name:"web 01"`); `parse_selector(s.text()) == s`."""
        return " ".join(self.terms(_quoted))

    def tag_filter(self) -> dict[str, str | None]:
        return dict(self.tags)

    def matches(self, target: object) -> bool:
        """Whether an instance (anything with `id` or `instance_id`, and `tags`, `name`, `status`,
        `region` where known) is one this selector means. Used where a selector is a rule rather than a
        query (role scopes, approval rules): a selector without `region:` matches every region, and a
        term about something the target does not say (its name, its region) does not match."""
        iid = getattr(target, "id", None) or getattr(target, "instance_id", "")
        if self.ids and iid not in self.ids:
            return False
        tags = getattr(target, "tags", None) or {}
        for key, value in self.tags:
            if key not in tags or (value is not None and tags[key] != value):
                return False
        if self.name is not None and not fnmatch.fnmatchcase(getattr(target, "name", None) or "", self.name):
            return False
        if self.status is not None and (getattr(target, "status", None) or "") != self.status:
            return False
        return self.region is None or (getattr(target, "region", None) or "") == self.region


_PLAIN = re.compile(r"^[^\s\"'\\]*$")


def _quoted(value: str) -> str:
    """A value as typed: bare when it can be, else in double quotes (with \\ and \" escaped)."""
    if value and _PLAIN.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tokenize(text: str, usage: str = GRAMMAR) -> list[str]:
    if "'" not in text and '"' not in text:  # Slack clients turn typed quotes into smart quotes
        text = text.translate({0x201C: '"', 0x201D: '"', 0x2018: "'", 0x2019: "'"})
    try:
        return shlex.split(text)
    except ValueError:
        raise SelectorError("The selector has an unbalanced quote.", usage) from None


def parse_selector(text: str, usage: str = GRAMMAR) -> Selector:
    return parse_terms(tokenize(text, usage), usage)


def parse_terms(tokens: list[str], usage: str = GRAMMAR) -> Selector:
    ids: set[str] = set()
    tags: set[tuple[str, str | None]] = set()
    single: dict[str, str] = {}
    for token in tokens:
        if ":" not in token and (token.lower().startswith("i-") or "," in token):
            ids.update(_parse_ids(token, usage))
            continue
        key, sep, value = token.partition(":")
        key = key.lower()
        if not sep and _BARE_NAME.match(token):  # a bare word is an instance name: `prod-web-03`
            key, sep, value = "name", ":", token
        if not sep or key not in _KEYS:
            raise SelectorError(f"`{token}` is not a selector term.{_did_you_mean(token)}", usage)
        if key == "tag":
            tags.add(_parse_tag(token, value, usage))
            continue
        if key in single:
            if key == "name":
                raise SelectorError(
                    f"`name:` is given twice (`{single[key]}` and `{value}`): one name per selector; "
                    "use ids, a glob (`name:web-*`) or tags for several.",
                    usage,
                )
            raise SelectorError(f"`{key}:` is given twice; give it once.", usage)
        if not value:
            raise SelectorError(f"`{key}:` needs a value.", usage)
        single[key] = value
    status = None
    if "status" in single:
        try:
            status = normalize_status(single["status"])
        except ValueError as exc:
            raise SelectorError(str(exc), usage) from None
    region = single.get("region")
    if region is not None and not _REGION.match(region):
        raise SelectorError(f"`{region}` is not a region id (e.g. cn-hangzhou).", usage)
    return Selector(
        tuple(sorted(ids)), tuple(sorted(tags, key=_tag_sort)), single.get("name"), status, region
    )


def _did_you_mean(token: str) -> str:
    """A hint for a term that is almost right: `env=dev` → `tag:env=dev`, `tags:env` → `tag:env`."""
    key, sep, value = token.partition(":")
    if not sep and "=" in token:
        return f" Did you mean `tag:{token}`?"
    if sep:
        close = difflib.get_close_matches(key.lower(), _KEYS, n=1, cutoff=0.6)
        if close:
            return f" Did you mean `{close[0]}:{value}`?"
        return f" The keys are {', '.join(f'`{k}:`' for k in _KEYS)}."
    return ""


def _tag_sort(pair: tuple[str, str | None]) -> tuple[str, int, str]:
    key, value = pair
    return (key, 0 if value is None else 1, value or "")


def _parse_ids(token: str, usage: str) -> list[str]:
    ids = [part.strip().lower() for part in token.split(",")]
    for iid in ids:
        if not _ID.match(iid):
            shown = iid or "(empty)"
            raise SelectorError(f"`{shown}` is not an instance id (they look like `i-bp1abc…`).", usage)
    return ids


def _parse_tag(token: str, body: str, usage: str) -> tuple[str, str | None]:
    key, sep, value = body.partition("=")
    if not _TAG_KEY.match(key):
        raise SelectorError(f"`{token}`: a tag needs a key, as in `tag:env=dev` or `tag:env`.", usage)
    if not sep:
        return key, None
    if not _TAG_VALUE.match(value):
        raise SelectorError(f"`{token}`: the tag value is too long or spans lines.", usage)
    return key, value
