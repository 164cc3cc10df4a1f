"""Settings of a command from flags, then environment variables, then the defaults of a frozen dataclass.

Shared by ``monitoring-server`` and ``monitoring-edge``, which must not import each other. Each setting
is a dataclass field with an environment variable (part of the public interface) and a flag derived from
the field's name (``backend_timeout_s`` → ``--backend-timeout``). Values are converted to the type of the
field's default: ``str``, ``int``, ``float``, ``bool`` (true/false/1/0) or a comma-separated ``tuple``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

__all__ = ["Setting", "load", "parser"]

C = TypeVar("C")


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

    An empty value counts as unset. A value that does not convert exits with a message naming the field.
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
            values[s.field] = _convert(s.field, raw, getattr(defaults, s.field))
    return cls(**values)


def _convert(name: str, raw: str, default: object) -> Any:
    try:
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1")
        return type(default)(raw)
    except ValueError:
        raise SystemExit(f"invalid value for {name}: {raw!r} (expected {type(default).__name__})") from None
