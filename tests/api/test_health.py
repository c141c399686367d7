from __future__ import annotations

import re

import httpx

from tests.conftest import LiveServer


def test_health_answers_200_when_ready(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/api/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_openapi_documents_jobs(live_server: LiveServer) -> None:
    spec = httpx.get(f"{live_server.url}/api/v1/openapi.json").json()
    assert "/api/v1/jobs" in spec["paths"]
    assert "post" in spec["paths"]["/api/v1/jobs"]


def test_the_docs_page_loads_nothing_from_outside(live_server: LiveServer) -> None:
    page = httpx.get(f"{live_server.url}/api/v1/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), f"outside asset: {url}"
        if url.startswith("/"):
            assert httpx.get(f"{live_server.url}{url}").status_code == 200, url
