"""Settings of a command from flags, then environment variables, then the defaults of a frozen dataclass.

Shared by ``monitoring-server`` and ``monitoring-edge``, which must not import each other. Each setting
is a dataclass field with an environment variable (part of the public interface) and a flag derived from
the field's name (``backend_timeout_s`` → ``--backend-timeout``). Values are converted to the type of the
field's default: ``str``, ``int``, ``float``, ``bool`` (true/false/1/0) or a comma-separated ``tuple``.

A setting with ``file_variant`` (a secret, say) can instead be read from the file named by its variable plus
``_FILE`` (``MONITORING_ADMIN_TOKEN_FILE``), so the value stays off the command line and out of the
environment: the file is read once at load, one trailing newline stripped. Setting both variables is an error.

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
_MAX_FILE_BYTES = 65536  # a secret or a URL; anything larger is the wrong file


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
    # The value may come from the file named by ``file_env`` instead of ``env`` (never both).
    file_variant: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.field.removesuffix("_s").replace("_", "-")

    @property
    def file_env(self) -> str:
        return self.env + "_FILE"


def parser(prog: str, description: str, defaults: object, settings: Sequence[Setting]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    for s in settings:
        shown = "" if s.secret else getattr(defaults, s.field)
        env = f"{s.env}, or a file named by {s.file_env}" if s.file_variant else s.env
        p.add_argument(s.flag, dest=s.field, metavar=s.env, help=f"{s.help} (env {env}; default {shown!r})")
    return p


def load(
    cls: type[C],
    cli: argparse.ArgumentParser,
    settings: Sequence[Setting],
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> C:
    """An instance of ``cls``: each field from its flag, else its environment variable (or the file its
    ``_FILE`` variable names), else its default.

    An empty value counts as unset. A value that does not convert, both a variable and its ``_FILE`` set, or
    a file that cannot be read raise :class:`ConfigError` naming the setting (never a file's contents).
    """
    environ = os.environ if environ is None else environ
    flags = vars(cli.parse_args(argv))
    defaults = cls()
    values: dict[str, Any] = {}
    for s in settings:
        raw = flags.get(s.field)
        if raw is None:
            raw = _from_environment(s, environ)
        if raw:
            values[s.field] = _convert(s, raw, getattr(defaults, s.field))
    return cls(**values)


def _from_environment(setting: Setting, environ: Mapping[str, str]) -> str | None:
    value = environ.get(setting.env)
    path = environ.get(setting.file_env) if setting.file_variant else None
    if not path:
        return value
    if value:
        raise ConfigError(f"{setting.field}: both {setting.env} and {setting.file_env} are set; set only one")
    return _read_value_file(setting, path)


def _read_value_file(setting: Setting, path: str) -> str:
    """The file's text without its trailing newline. Errors name the variable and the path, never the contents."""
    where = f"{setting.field} ({setting.file_env}={path!r})"
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_FILE_BYTES + 1)  # bounded: a path such as /dev/zero must not hang the start
    except OSError as error:
        raise ConfigError(f"{where}: cannot read the file: {error.strerror or type(error).__name__}") from None
    if len(data) > _MAX_FILE_BYTES:
        raise ConfigError(f"{where}: the file is larger than {_MAX_FILE_BYTES} bytes")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: the file is not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise ConfigError(f"{where}: the file is empty")
    return text


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
