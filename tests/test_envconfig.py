"""envconfig: flags, then environment variables, then defaults; typed conversion; a ConfigError naming the setting."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

import envconfig
from envconfig import Setting


@dataclasses.dataclass(frozen=True)
class _Config:
    addr: str = "127.0.0.1:1"
    timeout_s: float = 10.0
    verbose: bool = False
    origins: tuple[str, ...] = ()
    token: str = ""
    retries: int = 3


_SETTINGS = (
    Setting("addr", "X_ADDR", "where"),
    Setting("timeout_s", "X_TIMEOUT", "seconds"),
    Setting("verbose", "X_VERBOSE", "chatty"),
    Setting("origins", "X_ORIGINS", "list"),
    Setting("token", "X_TOKEN", "a secret", secret=True, file_variant=True),
    Setting("retries", "X_RETRIES", "how often", file_variant=True),
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


def _file(tmp_path: pathlib.Path, content: bytes) -> str:
    path = tmp_path / "value"
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    ("content", "value"),
    [
        (b"s3cret-value\n", "s3cret-value"),
        (b"s3cret-value", "s3cret-value"),
        (b"s3cret-value\r\n", "s3cret-value"),
        (b" with spaces \n\n", " with spaces \n"),  # one line ending is stripped, nothing else
    ],
)
def test_a_file_variant_reads_the_file_its_file_variable_names(
    tmp_path: pathlib.Path, content: bytes, value: str
) -> None:
    assert _load([], {"X_TOKEN_FILE": _file(tmp_path, content)}).token == value


def test_a_file_value_is_converted_and_a_flag_still_beats_it(tmp_path: pathlib.Path) -> None:
    assert _load([], {"X_RETRIES_FILE": _file(tmp_path, b"7\n")}).retries == 7
    assert _load(["--token", "from-flag"], {"X_TOKEN_FILE": str(tmp_path / "missing")}).token == "from-flag"
    assert _load([], {"X_TOKEN_FILE": "", "X_TOKEN": "plain"}).token == "plain"  # empty is unset


def test_a_setting_without_file_variant_has_no_file_variable(tmp_path: pathlib.Path) -> None:
    assert _load([], {"X_ADDR_FILE": _file(tmp_path, b"h:9\n")}).addr == _Config().addr


def test_the_variable_and_its_file_together_are_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(envconfig.ConfigError, match=r"^token: both X_TOKEN and X_TOKEN_FILE are set"):
        _load([], {"X_TOKEN": "plain", "X_TOKEN_FILE": _file(tmp_path, b"s3cret-value\n")})


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: d / "missing", "cannot read the file: No such file or directory"),
        (lambda d: d, "cannot read the file: Is a directory"),  # as root, permissions would not stop a read
        (lambda d: d / "empty", "the file is empty"),
        (lambda d: d / "newline", "the file is empty"),
        (lambda d: d / "binary", "the file is not UTF-8 text"),
        (lambda d: d / "huge", "the file is larger than 65536 bytes"),
    ],
)
def test_an_unusable_file_is_refused_naming_the_variable_not_the_contents(
    tmp_path: pathlib.Path, make: object, says: str
) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "newline").write_bytes(b"\n")
    (tmp_path / "binary").write_bytes(b"s3cret\xff\xfe")
    (tmp_path / "huge").write_bytes(b"s3cret" * 20000)
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(envconfig.ConfigError) as refused:
        _load([], {"X_TOKEN_FILE": str(path)})
    assert str(refused.value) == f"token (X_TOKEN_FILE={str(path)!r}): {says}"
    assert "s3cret" not in str(refused.value).replace(str(tmp_path), "")


def test_help_names_the_file_variable() -> None:
    shown = envconfig.parser("x", "test", _Config(), _SETTINGS).format_help()
    assert "X_TOKEN_FILE" in shown and "X_ADDR_FILE" not in shown
