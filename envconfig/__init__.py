"""Settings of a command from flags, then environment variables, then the defaults of a frozen dataclass.

Shared by ``monitoring-server`` and ``monitoring-edge``, which must not import each other. Each setting
is a dataclass field with an environment variable (part of the public interface) and a flag derived from
the field's name (``backend_timeout_s`` → ``--backend-timeout``). Values are converted to the type of the
field's default: ``str``, ``int``, ``float``, ``bool`` (true/false/1/0) or a comma-separated ``tuple``.

A value that cannot be used raises :class:`ConfigError`; only a command's entry point turns it into an exit.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

__all__ = ["ConfigError", "Setting", "load", "parser"]

C = TypeVar("C")


class ConfigError(ValueError):
    """A setting that cannot be used. The message names the setting (its variable, flag or file key) and
    what is allowed; the command-line entry points print it and exit with status 2."""


@dataclasses.dataclass(frozen=True)
class Setting:
    field: str
    env: str
    help: str
    # A secret's default is not shown by --help (it is empty anyway, but says so without a value).
    secret: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.field.removesuffix("_s").replace("_", "-")


def parser(prog: str, description: str, defaults: object, settings: Sequence[Setting]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    for s in settings:
        shown = "" if s.secret else getattr(defaults, s.field)
        p.add_argument(s.flag, dest=s.field, metavar=s.env, help=f"{s.help} (env {s.env}; default {shown!r})")
    return p


def load(
    cls: type[C],
    cli: argparse.ArgumentParser,
    settings: Sequence[Setting],
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> C:
    """An instance of ``cls``: each field from its flag, else its environment variable, else its default.

    An empty value counts as unset. A value that does not convert raises :class:`ConfigError` naming it.
    """
    environ = os.environ if environ is None else environ
    flags = vars(cli.parse_args(argv))
    defaults = cls()
    values: dict[str, Any] = {}
    for s in settings:
        raw = flags.get(s.field)
        if raw is None:
            raw = environ.get(s.env)
        if raw:
            values[s.field] = _convert(s, raw, getattr(defaults, s.field))
    return cls(**values)


def _convert(setting: Setting, raw: str, default: object) -> Any:
    try:
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1")
        return type(default)(raw)
    except ValueError:
        raise ConfigError(
            f"invalid value for {setting.field} ({setting.env} or {setting.flag}): {raw!r}"
            f" (expected {type(default).__name__})"
        ) from None
