"""The examples of the REST contract (tests/fixtures/contract/monitoring-api.txt), parsed from the file itself."""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import re
from typing import Any

CONTRACT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "contract" / "monitoring-api.txt"
# Annotated methods beyond the documented contract (additions: the contract's calls and JSON stay as documented).
ADDITIONS = frozenset(
    {
        "ListWorkspaceApps",
        "GetAppHealthHistory",
        "AcknowledgeAlert",
        "CreateSilence",
        "ListSilences",
        "GetSilence",
        "UpdateSilence",
        "ExpireSilence",
        "CreateNotificationChannel",
        "ListNotificationChannels",
        "GetNotificationChannel",
        "UpdateNotificationChannel",
        "DeleteNotificationChannel",
        "TestNotificationChannel",
        "ListDeliveries",
    }
)
_RESPONSE = re.compile(r"\nResponse\n")
_CURL = re.compile(r'curl (?:-N )?-X (GET|PATCH|POST|PUT|DELETE) "https://[^/"]+(/api/v1/[^"?]+)\??([^"]*)"')


@dataclasses.dataclass(frozen=True)
class Example:
    http_method: str
    path: str  # with the contract's placeholders, e.g. /api/v1/workspaces/{wsId}/monitoring/alerts
    query: str  # the curl line's query string, e.g. resolved=false
    body: Any

    def concrete_path(self, **values: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(1)), self.path)


@functools.cache
def examples() -> tuple[Example, ...]:
    """Each documented response example with the method and path of the curl line that follows it."""
    text = CONTRACT.read_text()
    decoder = json.JSONDecoder()
    found = []
    for m in _RESPONSE.finditer(text):
        body, end = decoder.raw_decode(text, m.end())
        curl = _CURL.search(text, end)
        assert curl is not None, f"no curl line after the example at offset {m.end()}"
        found.append(Example(curl.group(1), curl.group(2), curl.group(3), body))
    return tuple(found)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def compare(
    actual: Any, documented: Any, where: str = "$", extra: frozenset[str] = frozenset(), *, values: bool = True
) -> list[str]:
    """Differences in keys, nesting and JSON types (and values, unless ``values=False``) from an example.

    ``extra`` names keys (as JSON paths such as ``$.reasons``) that the response may add to the example.
    Without values, arrays are compared item by item against the example's first item, and a ``null``
    (no data, which the JSON rule allows on fields with presence) matches any documented type.
    """
    problems = []
    if actual is None and not values:
        return []
    if json_type(actual) != json_type(documented):
        return [
            f"{where}: {json_type(actual)} {actual!r} where the contract has {json_type(documented)} {documented!r}"
        ]
    if isinstance(documented, dict):
        for key in documented.keys() - actual.keys():
            problems.append(f"{where}.{key}: missing")
        for key in actual.keys() - documented.keys():
            if f"{where}.{key}" not in extra:
                problems.append(f"{where}.{key}: not in the contract")
        for key in documented.keys() & actual.keys():
            problems += compare(actual[key], documented[key], f"{where}.{key}", extra, values=values)
    elif isinstance(documented, list) and not values:
        for i, a in enumerate(actual if documented else []):
            problems += compare(a, documented[0], f"{where}[{i}]", extra, values=False)
    elif isinstance(documented, list):
        if len(actual) != len(documented):
            problems.append(f"{where}: {len(actual)} items where the contract has {len(documented)}")
        for i, (a, d) in enumerate(zip(actual, documented, strict=False)):
            problems += compare(a, d, f"{where}[{i}]", extra)
    elif values and actual != documented:
        problems.append(f"{where}: {actual!r} where the contract has {documented!r}")
    return problems
