"""The policy's `run` section: command templates with typed parameters, and the limits of a run. Pure
apart from rendering with Jinja2's sandbox.

    run:
      max_command_bytes: 16384        # the command text; RunCommand also refuses > 24 KB once Base64
      default_timeout_seconds: 60
      max_timeout_seconds: 86400
      templates:
        disk-usage:
          type: shell                 # shell | bat | powershell
          command: "df -h {{ path }}"
          params: {path: {type: str, default: "/", pattern: "^/[\\w./-]*$"}}
          timeout_seconds: 60

A parameter is `str` (it must have a `pattern` or an `enum`: it goes into a command line) or `int`
(`min` / `max`); one without a `default` is required. Values are checked before anything is rendered,
and the rendering is strict: an undefined name is an error, never an empty string. `| quote` quotes a
value for a POSIX shell.
"""

from __future__ import annotations

import functools
import re
import shlex
from typing import Annotated, Literal

from jinja2 import StrictUndefined, TemplateError
from jinja2 import Template as JinjaTemplate
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.errors import UserError
from bot.render import escape
from bot.run_model import TYPES

NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
PARAM = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(_Model):
    type: Literal["str", "int"] = "str"
    default: str | int | None = None
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    min: int | None = None
    max: int | None = None
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Param:
        if self.type == "str":
            if self.pattern is None and not self.enum:
                raise ValueError(
                    "a str parameter needs a `pattern` or an `enum` (its value goes into a command)"
                )
            if self.pattern is not None:
                try:
                    re.compile(self.pattern)
                except re.error as exc:
                    raise ValueError(f"pattern {self.pattern!r} is not a regular expression: {exc}") from None
            if self.min is not None or self.max is not None:
                raise ValueError("`min` / `max` apply to int parameters")
        elif self.pattern is not None or self.enum:
            raise ValueError("`pattern` / `enum` apply to str parameters")
        if self.default is not None:
            check_value("default", self, str(self.default))
        return self


class Template(_Model):
    type: Literal["shell", "bat", "powershell"] = "shell"
    command: Annotated[str, Field(min_length=1)]
    params: dict[Annotated[str, Field(pattern=PARAM)], Param] = Field(default_factory=dict)
    timeout_seconds: int = Field(default=60, ge=1, le=86400)
    description: str = ""

    @model_validator(mode="after")
    def _renders(self) -> Template:
        try:
            ENV.parse(self.command)
        except TemplateError as exc:
            raise ValueError(f"command: not a valid template: {exc}") from None
        return self


class RunPolicy(_Model):
    max_command_bytes: int = Field(default=16384, ge=16, le=24 * 1024)
    default_timeout_seconds: int = Field(default=60, ge=1, le=86400)
    max_timeout_seconds: int = Field(default=86400, ge=1, le=86400)
    templates: dict[Annotated[str, Field(pattern=NAME)], Template] = Field(default_factory=dict)


ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
ENV.filters["quote"] = lambda v: shlex.quote(str(v))


@functools.lru_cache(maxsize=1024)
def compiled(text: str) -> JinjaTemplate:
    """`text` compiled once in the sandbox (compiling costs far more than rendering, and runbooks render
    the same step texts at every progress edit); a compiled template may be rendered by many threads."""
    return ENV.from_string(text)


def check_value(name: str, param: Param, raw: str) -> str | int:
    """The parameter's value, typed; ValueError saying what is wrong."""
    if param.type == "int":
        try:
            value = int(raw, 10)
        except ValueError:
            raise ValueError(f"`{name}` must be a whole number, not {raw!r}") from None
        if param.min is not None and value < param.min:
            raise ValueError(f"`{name}` must be at least {param.min}")
        if param.max is not None and value > param.max:
            raise ValueError(f"`{name}` must be at most {param.max}")
        return value
    if param.enum and raw not in param.enum:
        raise ValueError(f"`{name}` must be one of {', '.join(param.enum)}, not {raw!r}")
    if param.pattern is not None and not re.fullmatch(param.pattern, raw):
        raise ValueError(f"`{name}` = {raw!r} does not match `{param.pattern}`")
    return raw


def check_values(
    what: str, params: dict[str, Param], given: dict[str, str], usage: str
) -> dict[str, str | int]:
    """The typed values of `KEY=VALUE` arguments (defaults filled in) for `what` ("Template `x`",
    "Runbook `y`"); UserError naming the parameter that is unknown, missing or invalid."""
    unknown = sorted(set(given) - set(params))
    if unknown:
        known = ", ".join(f"`{p}`" for p in params) or "none"
        raise UserError(
            f"{what} has no parameter {', '.join(f'`{escape(u)}`' for u in unknown)} "
            f"(its parameters: {known}).",
            usage,
        )
    values: dict[str, str | int] = {}
    for key, param in params.items():
        if key not in given and param.default is None:
            raise UserError(f"{what} needs `{key}=…`{_about(param)}.", usage)
        raw = given.get(key, str(param.default))
        try:
            values[key] = check_value(key, param, raw)
        except ValueError as exc:
            raise UserError(escape(str(exc)), usage) from None
    return values


def render(name: str, template: Template, given: dict[str, str], usage: str) -> tuple[str, dict]:
    """(the command, the typed values) for `KEY=VALUE` arguments; UserError before anything runs."""
    values = check_values(f"Template `{escape(name)}`", template.params, given, usage)
    try:
        command = compiled(template.command).render(**values)
    except TemplateError as exc:
        raise UserError(
            f"Template `{escape(name)}` could not be rendered: {escape(str(exc))}", usage
        ) from None
    return command, values


def _about(param: Param) -> str:
    if param.description:
        return f" ({escape(param.description)})"
    if param.enum:
        return f" (one of {', '.join(param.enum)})"
    return f" (matching `{param.pattern}`)" if param.pattern else ""


def command_type(name: str) -> str:
    return TYPES[name]
