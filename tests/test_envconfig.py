"""envconfig: flags, then environment variables, then defaults; typed conversion; a ConfigError naming the setting."""

from __future__ import annotations

import dataclasses

import pytest

import envconfig
from envconfig import Setting


@dataclasses.dataclass(frozen=True)
class _Config:
    addr: str = "127.0.0.1:1"
    timeout_s: float = 10.0
    verbose: bool = False
    origins: tuple[str, ...] = ()


_SETTINGS = (
    Setting("addr", "X_ADDR", "where"),
    Setting("timeout_s", "X_TIMEOUT", "seconds"),
    Setting("verbose", "X_VERBOSE", "chatty"),
    Setting("origins", "X_ORIGINS", "list"),
)


def _load(argv: list[str], environ: dict[str, str]) -> _Config:
    return envconfig.load(_Config, envconfig.parser("x", "test", _Config(), _SETTINGS), _SETTINGS, argv, environ)


def test_flag_beats_environment_beats_default() -> None:
    assert _load([], {}) == _Config()
    assert _load([], {"X_ADDR": "h:2"}).addr == "h:2"
    assert _load(["--addr", "h:3"], {"X_ADDR": "h:2"}).addr == "h:3"
    assert _load([], {"X_ADDR": ""}).addr == _Config().addr  # empty is unset


def test_values_take_the_type_of_the_default() -> None:
    config = _load(["--timeout", "2.5"], {"X_VERBOSE": "true", "X_ORIGINS": "http://a, http://b,"})
    assert config.timeout_s == 2.5
    assert config.verbose is True
    assert config.origins == ("http://a", "http://b")


@pytest.mark.parametrize(("env", "value"), [("X_TIMEOUT", "soon"), ("X_VERBOSE", "yes")])
def test_a_bad_value_is_refused_naming_the_field_and_variable(env: str, value: str) -> None:
    with pytest.raises(envconfig.ConfigError, match=rf"invalid value for \w+ \({env} or --\w+\)"):
        _load([], {env: value})
