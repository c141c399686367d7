"""A job names only the datasets its project may see (facility datasets, its own, those granted
to it at any time): another project's dataset is answered exactly as one that does not exist,
whoever submits, so its state and its path stay its owner's. Through the real API, on SQLite and
PostgreSQL; holding a job whose grant has ended is the control loop's (tests/control)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.helpers import Tenants, assert_error
from tests.conftest import LiveServer

IN_A_YEAR = datetime.now(UTC) + timedelta(days=365)
IN_A_MONTH = datetime.now(UTC) + timedelta(days=30)


@pytest.fixture
def books(tenants: Tenants, live_server: LiveServer) -> str:
    """nl-books: a dataset of proj-a's, registered by its owner, granted to no one."""
    root = live_server.state.data_root
    assert root is not None
    (root / "proj-a" / "books").mkdir(parents=True)
    (root / "proj-a" / "books" / "part-0.txt").write_text("boek\n")
    tenants.as_("owen").register_dataset(
        "nl-books",
        project="proj-a",
        path="books",
        classification="public",
        residency="ANY",
        retention_until=IN_A_YEAR,
        licence="CC0-1.0",
        controller="UvA",
        processor="AI Factory NL",
    )
    return "nl-books"


def submit(api: httpx.Client, tenants: Tenants, who: str, project: str, ref: str) -> httpx.Response:
    body = {"command": ["true"], "project": project, "datasets": [ref]}
    return api.post("/jobs", json=body, headers=tenants.headers(who))


def as_if_named(response: httpx.Response, missing: str, name: str) -> dict[str, Any]:
    """The answer to naming `missing`, had it been `name` that was asked for."""
    said: dict[str, Any] = json.loads(response.text.replace(missing, name))
    return said


@pytest.mark.parametrize("version", ["", "@1"])
@pytest.mark.parametrize("who", ["bob", "admin"])
def test_another_projects_dataset_is_answered_as_one_that_does_not_exist(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer, books: str, who: str, version: str
) -> None:
    tenants.tokens["admin"] = live_server.admin_token  # the admin decides nothing for proj-b
    missing = submit(api, tenants, who, "proj-b", f"no-such{version}")
    assert_error(missing, 422, "datasets", reason="is present")

    foreign = submit(api, tenants, who, "proj-b", f"{books}{version}")

    assert foreign.status_code == missing.status_code
    assert foreign.json() == as_if_named(missing, "no-such", books)
    assert "proj-a" not in foreign.text
    assert tenants.admin.jobs(project="proj-b") == []


def test_the_own_project_names_it_and_a_grant_lets_another_project_name_it_for_good(
    api: httpx.Client, tenants: Tenants, books: str
) -> None:
    own = submit(api, tenants, "alice", "proj-a", books)
    assert own.status_code == 201, own.text
    path = own.json()["env"]["AIFACTORY_DATASET_NL_BOOKS"]
    assert path.endswith("/proj-a/books")
    assert submit(api, tenants, "bob", "proj-b", books).status_code == 422

    owen = tenants.as_("owen")
    grant = owen.grant_dataset(books, project="proj-b", purpose="evaluation", until=IN_A_MONTH)
    granted = submit(api, tenants, "bob", "proj-b", f"{books}@1")
    assert granted.status_code == 201, granted.text
    assert granted.json()["env"] == {"AIFACTORY_DATASET_NL_BOOKS": path}

    owen.revoke_dataset_grant(books, grant["id"], reason="the study ended")
    revoked = submit(api, tenants, "bob", "proj-b", books)
    assert revoked.status_code == 201, revoked.text  # named still; the control loop holds it
    (use,) = tenants.as_("bob").job(revoked.json()["id"])["datasets"]
    assert (use["dataset"], use["access"]) == (books, "revoked")


def test_facility_datasets_are_named_by_every_project(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer
) -> None:
    root = live_server.state.data_root
    assert root is not None
    (root / "open").mkdir()
    (root / "open" / "part-0.txt").write_text("open\n")
    tenants.admin.register_dataset(
        "open-web",
        path="open",
        classification="public",
        residency="ANY",
        retention_until=IN_A_YEAR,
        licence="CC0-1.0",
        controller="AI Factory NL",
        processor="AI Factory NL",
    )
    for who, project in (("alice", "proj-a"), ("bob", "proj-b")):
        named = submit(api, tenants, who, project, "open-web")
        assert named.status_code == 201, named.text
        (use,) = tenants.as_(who).job(named.json()["id"])["datasets"]
        assert use["access"] == "none"  # named, and held until the facility grants it
