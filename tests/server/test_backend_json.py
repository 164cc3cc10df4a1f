"""The backends' answers are decoded with orjson (server.backend_body.decode_json): what they write, to the values
json.loads gives.

Every real Prometheus and Loki payload kept in tests/fixtures, and the numbers where a decoder could round
differently, decode to equal Python values. What is not JSON is a json.JSONDecodeError (a ValueError, as the
clients expect); so are a bare NaN and a lone surrogate escape, which json.loads would take and neither backend
writes (Go's encoders quote Prometheus's values and replace text that is not UTF-8 with U+FFFD).
"""

from __future__ import annotations

import json
import math
import pathlib

import pytest

from server.backend_body import decode_json
from server.metrics import prometheus

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
ANSWERS = sorted(FIXTURES.glob("*/*.json"))


def test_there_are_answers_of_both_backends() -> None:
    assert {path.parent.name for path in ANSWERS} == {"loki", "prometheus"}


@pytest.mark.parametrize("path", ANSWERS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_real_answer_decodes_to_the_same_values(path: pathlib.Path) -> None:
    content = path.read_bytes()
    assert decode_json(content) == json.loads(content)


@pytest.mark.parametrize(
    "number",
    [
        b"1795705200",
        b"1795894245.327",
        b"0.1",
        b"1e-7",
        b"2.5e-324",
        b"1.7976931348623157e308",
        b"-0.0",
        b"4503599627370497",
    ],
)
def test_numbers_round_as_the_standard_library_rounds_them(number: bytes) -> None:
    decoded = decode_json(b"[" + number + b"]")[0]
    assert decoded == json.loads(number) and math.copysign(1, decoded) == math.copysign(1, json.loads(number))


@pytest.mark.parametrize(
    "content", [b"", b"<html>bad gateway</html>", b'{"status":', b"\xff\xfe", b"[NaN]", b'["\\ud800"]']
)
def test_what_is_not_json_is_a_decode_error(content: bytes) -> None:
    with pytest.raises(json.JSONDecodeError):  # a ValueError, which the clients catch
        decode_json(content)


def test_prometheus_values_stay_exact_through_the_client_parser() -> None:
    body = (FIXTURES / "prometheus" / "query_vector_special_values.json").read_bytes()
    samples = prometheus._instant(prometheus._envelope(200, {}, body, 1.0))  # type: ignore[arg-type]
    values = {sample.labels["v"]: sample.value for sample in samples}
    assert values["pos_inf"] == math.inf and values["neg_inf"] == -math.inf and math.isnan(values["nan"])
    assert {sample.time for sample in samples} == {1795894245.327}
