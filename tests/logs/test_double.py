"""The Loki double answers like Loki: checked against tests/fixtures/loki (bodies, types, codes, frames)."""

from __future__ import annotations

import json
import pathlib
import time

import httpx
import pytest
import websockets

from testing.loki import LokiDouble
from tests.logs.conftest import FIXTURES


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def error_example(example_id: str) -> dict:
    return next(e for e in fixture("error_responses.json")["examples"] if e["id"] == example_id)


def close_frame(frame_id: str) -> dict:
    return next(f for f in fixture("tail_close_frames.json")["close_frames"] if f["id"] == frame_id)


def unique_labels(name: str) -> dict[str, str]:
    return {"suite": "double", "case": f"{name}_{time.time_ns()}"}


def selector(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


@pytest.mark.parametrize(
    ("example_id", "params"),
    [
        ("parse_error_unterminated_literal", {"query": '{foo="bar}'}),
        ("parse_error_missing_brace", {"query": '{foo="bar"'}),
        ("parse_error_unquoted_filter", {"query": '{foo="bar"} foo'}),
        ("empty_compatible_matchers", {"query": '{app=~".*"}'}),
        ("max_entries_limit", {"query": '{foo="bar"}', "limit": "10000"}),
        ("limit_not_positive", {"query": '{foo="bar"}', "limit": "0"}),
        ("end_before_start", {"query": '{foo="bar"}', "start": "2000000000000000000", "end": "1000000000000000000"}),
        ("invalid_direction", {"query": '{foo="bar"}', "direction": "sideways"}),
    ],
)
def test_query_range_errors_are_lokis_plain_text(loki: LokiDouble, example_id: str, params: dict[str, str]) -> None:
    expected = error_example(example_id)
    response = loki.http.get("/loki/api/v1/query_range", params=params)
    assert response.status_code == expected["status"]
    assert response.headers["content-type"] == expected["content_type"]
    assert response.text == expected["body"]  # byte for byte: no JSON, no trailing newline


def test_instant_log_query_is_refused_like_loki(loki: LokiDouble) -> None:
    expected = error_example("instant_log_query")
    response = loki.http.get("/loki/api/v1/query", params={"query": '{app="foo"}'})
    assert (response.status_code, response.headers["content-type"], response.text) == (
        expected["status"],
        expected["content_type"],
        expected["body"],
    )


def test_ready_push_and_tail_errors_match_fixtures(loki: LokiDouble) -> None:
    ready = error_example("ready_ok")
    response = loki.http.get("/ready")
    assert (response.status_code, response.headers["content-type"], response.text) == (
        ready["status"],
        ready["content_type"],
        ready["body"],
    )
    no_streams = error_example("push_no_streams")
    response = loki.http.post("/loki/api/v1/push", json={"streams": []})
    assert (response.status_code, response.text) == (no_streams["status"], no_streams["body"])
    invalid = fixture("push_request_invalid_line_object.json")
    assert loki.http.post("/loki/api/v1/push", json=invalid).status_code == 400
    delay = error_example("tail_delay_for_too_large")
    response = loki.http.get("/loki/api/v1/tail", params={"query": '{a="b"}', "delay_for": "6"})
    assert (response.status_code, response.text) == (delay["status"], delay["body"])


def test_fixture_push_bodies_are_accepted_and_queryable(loki: LokiDouble) -> None:
    for name in ("push_request.docs.json", "push_request_multi_stream.json", "push_request_structured_metadata.json"):
        response = loki.http.post("/loki/api/v1/push", json=fixture(name))
        assert response.status_code == 204, (name, response.text)
        assert response.content == b""
    response = loki.http.get(
        "/loki/api/v1/query_range",
        params={"query": '{foo="bar2"}', "start": "1570818238000000000", "end": "1570818238000000001"},
    )
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    assert response.text.endswith("\n")
    body = response.json()
    assert body["status"] == "success" and body["data"]["resultType"] == "streams"
    assert set(body["data"]["stats"]) == set(fixture("query_stats_empty.json"))
    lines = sorted(v[1] for s in body["data"]["result"] for v in s["values"])
    # The docs body and the metadata body share stream and instant but differ in metadata: both are kept.
    assert lines == ["fizzbuzz", "fizzbuzz", "fizzbuzz", "graf", "xx"]
    # Structured metadata is merged into the returned labels (default encoding), like the sm_merged fixture.
    streams = [s["stream"] for s in body["data"]["result"]]
    assert {"foo": "bar2", "a": "a", "b": "b", "service_name": "unknown_service"}.items() <= next(
        s for s in streams if "a" in s
    ).items()
    assert all("detected_level" in s for s in streams)  # Loki 3 adds it at ingestion
    assert all(isinstance(v[0], str) and v[0].isdigit() for s in body["data"]["result"] for v in s["values"])


def test_query_range_window_direction_limit_and_ties(loki: LokiDouble) -> None:
    a, b = unique_labels("ties"), unique_labels("ties")
    a["s"], b["s"] = "a", "b"
    base = time.time_ns() - 10**9
    loki.push([{"stream": a, "values": [[base + i, f"a{i}"] for i in range(5)] + [[base + 2, "a2bis"]]}])
    loki.push([{"stream": b, "values": [[base + 2, "b2"], [base + 5, "b5"]]}])
    query = "{" + f'case=~"{a["case"]}|{b["case"]}"' + "}"

    def lines(**params: str) -> list[str]:
        body = loki.http.get("/loki/api/v1/query_range", params={"query": query, **params}).json()
        entries = [(int(v[0]), v[1]) for s in body["data"]["result"] for v in s["values"]]
        return [line for _, line in sorted(entries, key=lambda e: e[0])]

    # start inclusive, end exclusive
    window = lines(start=str(base + 1), end=str(base + 3), direction="forward")
    assert window[0] == "a1" and set(window) == {"a1", "a2", "a2bis", "b2"}
    assert window.index("a2") < window.index("a2bis")  # insertion order within a stream
    assert "a3" not in lines(start=str(base + 1), end=str(base + 3))
    # backward keeps the newest `limit` entries in total across streams; forward the oldest
    assert set(lines(start=str(base), end=str(base + 10), limit="2")) == {"a4", "b5"}
    assert set(lines(start=str(base), end=str(base + 10), limit="2", direction="FORWARD")) == {"a0", "a1"}


def test_labels_values_empty_and_buildinfo(loki: LokiDouble) -> None:
    empty = loki.http.get("/loki/api/v1/label/no_such_label_anywhere/values")
    assert empty.json() == fixture("label_values_empty.json")
    labels = unique_labels("labels")
    loki.push([{"stream": labels, "values": [[time.time_ns(), "x"]]}])
    names = loki.http.get("/loki/api/v1/labels", params={"query": selector(labels)}).json()
    assert names == {"status": "success", "data": ["case", "service_name", "suite"]}
    values = loki.http.get("/loki/api/v1/label/case/values", params={"query": selector(labels)}).json()
    assert values["data"] == [labels["case"]]
    info = loki.http.get("/loki/api/v1/status/buildinfo").json()
    assert list(info) == ["version", "revision", "branch", "buildUser", "buildDate", "goVersion"]
    assert set(info) == set(fixture("buildinfo.json")) and all(isinstance(v, str) for v in info.values())


@pytest.mark.timeout(30)
async def test_tail_frames_replay_live_and_close_codes(loki: LokiDouble) -> None:
    labels = unique_labels("tail")
    now = time.time_ns()
    loki.push([{"stream": labels, "values": [[now - 2000, "old1"], [now - 1000, "old2"]]}])
    url = loki.url.replace("http", "ws") + "/loki/api/v1/tail"
    params = httpx.QueryParams({"query": selector(labels), "start": str(now - 5000), "limit": "10"})
    async with websockets.connect(f"{url}?{params}") as ws:
        replay = json.loads(await ws.recv())
        assert [v[1] for s in replay["streams"] for v in s["values"]] == ["old1", "old2"]
        assert "dropped_entries" not in replay
        loki.push([{"stream": labels, "values": [[time.time_ns(), "live1"], [time.time_ns() + 1, "live2"]]}])
        frame = json.loads(await ws.recv())
        # One stream object per entry, labels repeated, like tail_message_one_entry_per_stream.json.
        shape = fixture("tail_message_one_entry_per_stream.json")
        assert set(frame) == set(shape)
        assert [len(s["values"]) for s in frame["streams"]] == [1, 1]
        assert [s["values"][0][1] for s in frame["streams"]] == ["live1", "live2"]
        assert all(s["stream"]["case"] == labels["case"] for s in frame["streams"])
        loki.drop_next(2)
        loki.push([{"stream": labels, "values": [[time.time_ns(), "lost1"], [time.time_ns() + 1, "lost2"]]}])
        loki.push([{"stream": labels, "values": [[time.time_ns(), "after"]]}])
        frame = json.loads(await ws.recv())
        assert set(frame) == set(fixture("tail_message.json"))  # streams + dropped_entries
        assert len(frame["dropped_entries"]) == 2
        assert set(frame["dropped_entries"][0]) == {"timestamp", "labels"}
        expected = close_frame("all_ingesters_gone")
        assert loki.drop_tails(expected["reason"]) >= 1
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (expected["code"], expected["reason"])


@pytest.mark.timeout(30)
async def test_tail_concurrency_limit_closes_with_lokis_reason(log_dir: pathlib.Path) -> None:
    from testing.loki import running_loki

    expected = close_frame("too_many_tails")
    with running_loki(log_dir, extra_args=["--max-concurrent-tails", "1"]) as double:
        url = double.url.replace("http", "ws") + "/loki/api/v1/tail?" + str(httpx.QueryParams({"query": '{a="b"}'}))
        async with websockets.connect(url), websockets.connect(url) as second:
            with pytest.raises(websockets.ConnectionClosedError) as closed:
                await second.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == expected["code"]
        assert closed.value.rcvd.reason == expected["reason"].replace("(11 > 10)", "(2 > 1)")
