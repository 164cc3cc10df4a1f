"""The edge serves the console's files at ``/`` with their types, a strict CSP and cache validators, and
everything else as before: the API under /api/v1, its JSON 404 for unknown paths."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import httpx
import pytest

from edge import console
from testing.edge import running_edge


@pytest.fixture(scope="module")
def edge_url(log_dir: pathlib.Path) -> Iterator[str]:
    # No upstream is needed to serve static files: the console's own calls are the API's business.
    with running_edge(log_dir, "127.0.0.1:9") as edge:
        yield edge.url


@pytest.mark.parametrize(
    ("path", "content_type", "cache"),
    [
        ("/", "text/html; charset=utf-8", "no-cache"),
        ("/js/main.js", "text/javascript; charset=utf-8", "no-cache"),
        ("/style.css", "text/css; charset=utf-8", "no-cache"),
        ("/favicon.svg", "image/svg+xml", "no-cache"),
        ("/vendor/uplot-1.6.32/uPlot.iife.min.js", "text/javascript; charset=utf-8", "immutable"),
        ("/vendor/uplot-1.6.32/LICENSE", "text/plain; charset=utf-8", "immutable"),
    ],
)
def test_files_are_served_with_their_type_csp_and_cache_policy(
    edge_url: str, path: str, content_type: str, cache: str
) -> None:
    response = httpx.get(edge_url + path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert cache in response.headers["cache-control"]
    assert response.headers["content-security-policy"].startswith("default-src 'self';")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == console.ASSETS[path].body


def test_the_page_loads_nothing_from_another_host() -> None:
    for path, asset in console.ASSETS.items():
        if path.endswith((".html", ".js", ".css")) and "/vendor/" not in path:
            text = asset.body.decode()
            assert "http://" not in text and "https://" not in text, path


def test_an_unchanged_file_is_a_304_by_etag_and_head_has_no_body(edge_url: str) -> None:
    first = httpx.get(edge_url + "/")
    again = httpx.get(edge_url + "/", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    head = httpx.head(edge_url + "/js/main.js")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(console.ASSETS["/js/main.js"].body)


def test_other_paths_and_methods_keep_the_apis_answers(edge_url: str) -> None:
    missing = httpx.get(edge_url + "/nothing-here.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["details"][0]["reason"] == "ROUTE_NOT_FOUND"
    posted = httpx.post(edge_url + "/")
    assert posted.status_code == 404
    assert httpx.get(edge_url + "/healthz").json() == {"status": "SERVING"}
    assert httpx.get(edge_url + "/api/v1/openapi.json").status_code == 200


def test_the_signed_in_url_carries_the_key_only_in_the_fragment() -> None:
    url = console.signed_in_url("http://127.0.0.1:8080", "ws_demo", "dor_sk_abc-_1", ["app_a", "app_b"])
    assert url == "http://127.0.0.1:8080/#key=dor_sk_abc-_1&workspace=ws_demo&apps=app_a,app_b"
    assert "dor_sk" not in httpx.URL(url).copy_with(fragment=None).raw_path.decode()
