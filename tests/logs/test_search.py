"""Log search (issue 17, item 1): ``q``, ``regex``, ``min_severity`` and ``direction`` on ListAppLogs and the
stream, through a real server process against the Loki double, plus the LogQL they become."""

from __future__ import annotations

import asyncio
import random
import time

import grpc
import pytest
import re2

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server.errors import InvalidArgument
from server.logs.filters import MAX_FILTER_BYTES, log_filter, quote_meta
from server.logs.logql import LabelScheme
from testing.loki import LokiDouble
from testing.loki_double import logql as double_logql
from testing.platform import Tenant
from tests.logs.test_list_logs import app_labels, assert_invalid, list_all, ns_of
from tests.logs.test_stream import Subscription, tails_opened, until

pytestmark = pytest.mark.timeout(90)

NS = 1_000_000_000
LEVELS = ["debug", "info", "warn", "error", "fatal", "", "notice"]  # "" and "notice" read as INFO
SEVERITY_OF = {"debug": 1, "info": 2, "warn": 3, "error": 4, "fatal": 5, "": 2, "notice": 2}
WORDS = ["Timeout", "timeout", "TIMEOUT", "time out", "user=ünïcode", "ÜNÏCODE", 'quote" and \\ back', "a.b*c"]


def test_quote_meta_escapes_what_go_escapes() -> None:
    assert quote_meta(r"a.b*c+d?e(f)g|h[i]j{k}l^m$n\o") == r"a\.b\*c\+d\?e\(f\)g\|h\[i\]j\{k\}l\^m\$n\\o"
    assert quote_meta('ü "x" -#&~ ') == 'ü "x" -#&~ '


def test_the_logql_of_a_search_keeps_the_selector_whatever_the_values() -> None:
    scheme = LabelScheme()
    hostile = '"} or {app_id=~".+"} |= "`\\'
    for fields in ({"q": hostile}, {"regex": quote_meta(hostile)}, {"q": hostile, "regex": "(?s).*"}):
        query = double_logql.parse(log_filter(**fields).logql(scheme, "ws1", "app1"))  # type: ignore[arg-type]
        # Parsed as Loki parses it: the app's selector and nothing else, then line filters only.
        assert query.selector == (
            double_logql.Matcher("workspace_id", "=", "ws1"),
            double_logql.Matcher("app_id", "=", "app1"),
        )
        assert all(stage({}, f"x {hostile} {hostile.upper()} y") for stage in query.stages), fields
        assert not all(stage({}, "x y") for stage in query.stages), fields


def test_bad_filters_are_refused_naming_the_field() -> None:
    for regex, reason in (("(", "missing )"), ("(?=x)", "invalid perl operator"), (r"\1", "invalid escape")):
        with pytest.raises(InvalidArgument) as refused:
            log_filter(regex=regex)
        assert str(refused.value).startswith(f"regex: not a valid RE2 regular expression: {reason}"), refused.value
    # RE2 (C++) accepts \C, Go's regexp (Loki's) refuses it: refused here, before Loki answers 400.
    for regex in (r"a\C", r"[\C]", r"\\\C"):
        with pytest.raises(InvalidArgument, match=r"^regex: \\C \(any byte\) is not supported"):
            log_filter(regex=regex)
    assert log_filter(regex=r"\\C").regex  # an escaped backslash, then C
    with pytest.raises(InvalidArgument, match=rf"q: may be at most {MAX_FILTER_BYTES} bytes, got 1026"):
        log_filter(q="ü" * 513)
    with pytest.raises(InvalidArgument, match="severity: INFO is below min_severity ERROR"):
        log_filter(severity=pb.SEVERITY_INFO, min_severity=pb.SEVERITY_ERROR)
    assert log_filter(q="x" * MAX_FILTER_BYTES).q  # the limit itself is allowed


async def _searchable_app(loki: LokiDouble, tenant: Tenant) -> tuple[str, list[tuple[int, str, str]]]:
    """An app whose last 10 minutes hold lines of every level with the WORDS in them, several per instant."""
    app = (await tenant.add_app()).id
    rng = random.Random(17)
    base = time.time_ns() - 10 * 60 * NS
    instants = sorted({base + rng.randrange(0, 10**6) for _ in range(60)})
    written: list[tuple[int, str, str]] = []
    by_level: dict[str, list[list[object]]] = {level: [] for level in LEVELS}
    for i in range(700):
        level = LEVELS[i % len(LEVELS)]
        line = f"line {i:04d} {WORDS[i % len(WORDS)] if i % 3 else 'plain'}"
        stamp = instants[rng.randrange(len(instants))]
        by_level[level].append([stamp, line])
        written.append((stamp, level, line))
    loki.push([{"stream": app_labels(tenant, app, level=lvl), "values": v} for lvl, v in by_level.items() if v])
    # Another app of the same workspace whose lines every search would match: none may come back.
    other = (await tenant.add_app()).id
    loki.push([{"stream": app_labels(tenant, other), "values": [[base + 1, line] for line in WORDS]}])
    return app, written


async def test_q_regex_and_min_severity_find_exactly_the_matching_lines_in_both_directions(
    loki: LokiDouble, logs_tenant: Tenant
) -> None:
    app, written = await _searchable_app(loki, logs_tenant)
    cases: list[tuple[dict[str, object], object]] = [
        ({"q": "timeout"}, lambda lvl, line: "timeout" in line.lower()),
        ({"q": "ünïcode"}, lambda lvl, line: "ünïcode" in line.lower()),
        ({"q": 'quote" and \\ back'}, lambda lvl, line: 'quote" and \\ back' in line),
        ({"q": "a.b*c"}, lambda lvl, line: "a.b*c" in line),
        ({"regex": r"line 0\d\d[05] "}, lambda lvl, line: re2.search(r"line 0\d\d[05] ", line) is not None),
        ({"min_severity": pb.SEVERITY_WARNING}, lambda lvl, line: SEVERITY_OF[lvl] >= 3),
        ({"min_severity": pb.SEVERITY_INFO}, lambda lvl, line: SEVERITY_OF[lvl] >= 2),
        (
            {"q": "TIME", "regex": "out$", "min_severity": pb.SEVERITY_ERROR},
            lambda lvl, line: "time" in line.lower() and line.endswith("out") and SEVERITY_OF[lvl] >= 4,
        ),
        ({"severity": pb.SEVERITY_INFO, "min_severity": pb.SEVERITY_INFO}, lambda lvl, line: SEVERITY_OF[lvl] == 2),
    ]
    for fields, keep in cases:
        expected = sorted((ts, line) for ts, lvl, line in written if keep(lvl, line))  # type: ignore[operator]
        assert expected, fields
        for direction, limit in ((pb.LOG_DIRECTION_NEWEST_FIRST, 7), (pb.LOG_DIRECTION_OLDEST_FIRST, 6)):
            entries, _ = await list_all(logs_tenant, app, limit=limit, direction=direction, **fields)
            got = [(ns_of(e), e.message) for e in entries]
            stamps = [stamp for stamp, _ in got]
            if direction == pb.LOG_DIRECTION_OLDEST_FIRST:
                assert stamps == sorted(stamps), fields
            else:
                assert stamps == sorted(stamps, reverse=True), fields
            assert sorted(got) == expected, (fields, direction)  # each exactly once, nothing else


async def test_page_tokens_are_bound_to_every_filter_and_the_direction(loki: LokiDouble, logs_tenant: Tenant) -> None:
    app, _ = await _searchable_app(loki, logs_tenant)
    first = await logs_tenant.monitoring.ListAppLogs(
        pb.ListAppLogsRequest(workspace_id=logs_tenant.workspace_id, app_id=app, limit=5, q="timeout"),
        metadata=logs_tenant.auth,
    )
    token = first.next_page_token
    for changed in (
        {"q": "Timeout"},
        {"q": "timeout", "regex": "x"},
        {"q": "timeout", "min_severity": pb.SEVERITY_ERROR},
        {"q": "timeout", "direction": pb.LOG_DIRECTION_OLDEST_FIRST},
    ):
        request = pb.ListAppLogsRequest(
            workspace_id=logs_tenant.workspace_id, app_id=app, limit=5, page_token=token, **changed
        )
        await assert_invalid(logs_tenant.monitoring.ListAppLogs(request, metadata=logs_tenant.auth), "page_token")
    # The default direction, spelled out, is the same query.
    same = pb.ListAppLogsRequest(
        workspace_id=logs_tenant.workspace_id,
        app_id=app,
        limit=5,
        page_token=token,
        q="timeout",
        direction=pb.LOG_DIRECTION_NEWEST_FIRST,
    )
    assert len((await logs_tenant.monitoring.ListAppLogs(same, metadata=logs_tenant.auth)).logs) == 5


async def test_bad_search_values_are_invalid_argument_before_loki_sees_them(
    loki: LokiDouble, logs_tenant: Tenant
) -> None:
    app = (await logs_tenant.add_app()).id
    calls_before = loki.stats()["calls"].get("query_range", 0)
    for fields, field in (
        ({"regex": "a(b"}, "regex"),
        ({"regex": "(?<=x)y"}, "regex"),
        ({"q": "x" * (MAX_FILTER_BYTES + 1)}, "q"),
        ({"min_severity": 9}, "min_severity"),
        ({"direction": 7}, "direction"),
        ({"severity": pb.SEVERITY_DEBUG, "min_severity": pb.SEVERITY_WARNING}, "severity"),
    ):
        request = pb.ListAppLogsRequest(workspace_id=logs_tenant.workspace_id, app_id=app, **fields)  # type: ignore[arg-type]
        await assert_invalid(logs_tenant.monitoring.ListAppLogs(request, metadata=logs_tenant.auth), field)
        if "direction" not in fields:
            error = await _refusal(Subscription(logs_tenant, app, **fields))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (error.details() or "").startswith(f"{field}:"), error.details()
    assert loki.stats()["calls"].get("query_range", 0) == calls_before  # none reached Loki


async def test_the_stream_keeps_only_matching_lines_and_binds_its_cursor_to_the_filters(
    loki: LokiDouble, logs_tenant: Tenant
) -> None:
    app = (await logs_tenant.add_app()).id
    before = tails_opened(loki)
    searching = Subscription(logs_tenant, app, q="TimeOut", min_severity=pb.SEVERITY_WARNING)
    everything = Subscription(logs_tenant, app)
    try:
        await until(lambda: tails_opened(loki) > before)
        now = time.time_ns()
        lines = [("info", "a timeout"), ("error", "a TIMEOUT"), ("warn", "no match"), ("fatal", "timeout!")]
        loki.push(
            [
                {"stream": app_labels(logs_tenant, app, level=lvl), "values": [[now + i, line]]}
                for i, (lvl, line) in enumerate(lines)
            ]
        )
        await everything.lines_count(len(lines))
        await searching.lines_count(2)
        await asyncio.sleep(0.3)  # nothing more arrives for the searching stream
        assert searching.lines == ["a TIMEOUT", "timeout!"]
        cursor = searching.messages[-1].cursor
    finally:
        await searching.close()
        await everything.close()
    # Its cursor resumes the same search only.
    other = Subscription(logs_tenant, app, q="timeout", min_severity=pb.SEVERITY_WARNING, cursor=cursor)
    error = await _refusal(other)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and (error.details() or "").startswith("cursor:")


async def _refusal(sub: Subscription) -> grpc.aio.AioRpcError:
    await sub.wait_for(lambda s: s.error is not None or (s.task is not None and s.task.done()), within=5)
    assert sub.error is not None
    await sub.close()
    return sub.error
