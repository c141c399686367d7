"""Datasets over the API (SQLite and PostgreSQL, real data root): registration, versions,
grants and revocation, the JSON they answer with, who may do what, and bad input as a 4xx
naming the field.

tests.api.helpers.Tenants: proj-a (owen owner, alice member, vera viewer), proj-b (admin owner,
bob member), olga an operator and carol a user with no project. The data root has an area for
each project (`<root>/proj-a/`, `<root>/proj-b/`) and facility data at its top.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from aifactory.client.client import ApiError
from tests.api.helpers import Tenants, assert_error, check_all
from tests.conftest import LiveServer

NOW = datetime.now(UTC)
IN_A_YEAR = (NOW + timedelta(days=365)).isoformat()
IN_A_MONTH = (NOW + timedelta(days=30)).isoformat()
BOOKS: dict[str, Any] = {
    "name": "nl-books",
    "project": "proj-a",
    "description": "Dutch books, OCR",
    "controller": "UvA",
    "processor": "AI Factory NL",
    "path": "books",
    "classification": "personal",
    "legal_basis": "public_task",
    "purposes": ["llm-training", "evaluation"],
    "residency": "NL",
    "retention_until": IN_A_YEAR,
    "licence": "CC-BY-4.0",
}
VERSION_FIELDS = {
    "dataset",
    "version",
    "state",
    "path",
    "size_bytes",
    "files",
    "sha256",
    "classification",
    "legal_basis",
    "special_condition",
    "dpia_ref",
    "purposes",
    "residency",
    "retention_until",
    "licence",
    "registered_by",
    "registered_at",
    "erased_at",
}
GRANT_FIELDS = {
    "id",
    "dataset",
    "project",
    "purpose",
    "until",
    "active",
    "granted_by",
    "granted_at",
    "revoked_at",
    "revoked_by",
    "revoke_reason",
}


@pytest.fixture
def data_root(live_server: LiveServer) -> Path:
    root = live_server.state.data_root
    assert root is not None
    for name in ["proj-a/books", "proj-a/books-v2", "proj-a/other", "proj-b/b-data", "open"]:
        (root / name).mkdir(parents=True)
        (root / name / "part-0.txt").write_text(f"{name.rsplit('/')[-1]}\n")
    return root


@pytest.fixture(autouse=True)
def admin_by_name(tenants: Tenants, live_server: LiveServer) -> None:
    """`admin` among the users the tests act as by name."""
    tenants.tokens["admin"] = live_server.admin_token


def post(api: httpx.Client, tenants: Tenants, user: str, path: str, body: Any) -> httpx.Response:
    return api.post(path, json=body, headers=tenants.headers(user))


def test_a_dataset_is_registered_shown_and_listed(
    api: httpx.Client, tenants: Tenants, data_root: Path
) -> None:
    created = post(api, tenants, "owen", "/datasets", BOOKS)
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {
        "name",
        "project",
        "description",
        "controller",
        "processor",
        "created_by",
        "created_at",
        "versions",
        "grants",
    }
    assert (body["name"], body["project"], body["created_by"], body["grants"]) == (
        "nl-books",
        "proj-a",
        "owen",
        [],
    )
    (version,) = body["versions"]
    assert set(version) == VERSION_FIELDS
    assert (version["version"], version["state"], version["files"], version["size_bytes"]) == (
        1,
        "present",
        1,
        6,
    )
    assert version["path"] == str(data_root.resolve() / "proj-a" / "books")
    assert len(version["sha256"]) == 64
    assert datetime.fromisoformat(version["retention_until"]) == datetime.fromisoformat(IN_A_YEAR)
    assert tenants.as_("vera").dataset("nl-books") == body
    assert [d["name"] for d in tenants.as_("alice").datasets()] == ["nl-books"]
    audit = tenants.admin.audit(object="dataset:nl-books")
    assert [e["action"] for e in audit] == ["dataset.register", "dataset.version"]


def test_bad_input_is_a_4xx_naming_the_field(
    api: httpx.Client, tenants: Tenants, data_root: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside").mkdir()
    (data_root / "proj-a" / "other" / "leak").symlink_to(tmp_path / "outside")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"legal_basis": "because"}, 422, "legal_basis"),
        ({"legal_basis": None}, 422, "legal_basis"),  # personal data without a basis
        ({"classification": "secret"}, 422, "classification"),
        ({"classification": "special_category"}, 422, "special_condition"),
        ({"residency": "US"}, 422, "residency"),
        ({"purposes": []}, 422, "purposes"),
        ({"purposes": "training"}, 422, "purposes"),
        ({"retention_until": "soon"}, 422, "retention_until"),
        ({"retention_until": "2001-01-01T00:00:00Z"}, 422, "retention_until"),
        ({"name": "Not A Name"}, 422, "name"),
        ({"name": "n" * 65}, 422, "name"),
        ({"licence": ""}, 422, "licence"),
        ({"controller": 7}, 422, "controller"),
        ({"colour": "blue"}, 422, "colour"),
        ({"path": "../../outside"}, 422, "path"),
        ({"path": str(tmp_path / "outside")}, 422, "path"),
        ({"path": "../proj-b/b-data"}, 422, "path"),  # another project's area
        ({"path": str(data_root / "proj-b" / "b-data")}, 422, "path"),
        ({"path": "../open"}, 422, "path"),  # facility data, outside proj-a's area
        ({"path": "other"}, 422, "path"),  # a link inside leads out
        ({"path": "missing"}, 422, "path"),
        ({"path": "."}, 422, "path"),
        ({"project": "nope"}, 404, "project"),
    ]
    check_all(
        (repr(change), post(api, tenants, "owen", "/datasets", {**BOOKS, **change}), s, f)
        for change, s, f in cases
    )
    for needed in ("licence", "path"):  # `path` is also where FastAPI says "path parameter"
        missing = {k: v for k, v in BOOKS.items() if k != needed}
        assert_error(post(api, tenants, "owen", "/datasets", missing), 422, needed)
    assert tenants.admin.datasets() == []


def test_names_and_data_are_taken_once(
    api: httpx.Client, tenants: Tenants, live_server: LiveServer, data_root: Path
) -> None:
    assert post(api, tenants, "owen", "/datasets", BOOKS).status_code == 201
    again = post(api, tenants, "owen", "/datasets", {**BOOKS, "path": "other"})
    assert_error(again, 409, "name")
    for path in ["books", "books/part-0.txt", str(data_root / "proj-a")]:
        overlap = post(api, tenants, "owen", "/datasets", {**BOOKS, "name": "x", "path": path})
        assert_error(overlap, 422, "path")
    live_server.state.data_root = None
    try:
        none = post(api, tenants, "owen", "/datasets", {**BOOKS, "name": "x", "path": "other"})
    finally:
        live_server.state.data_root = data_root
    assert_error(none, 409, "path", reason="this facility has no data root")


def test_a_project_registers_only_data_in_its_own_area(
    api: httpx.Client, tenants: Tenants, data_root: Path, tmp_path: Path
) -> None:
    area = f"the data of project proj-a's datasets lies under {data_root.resolve() / 'proj-a'}/"
    (data_root / "proj-a" / "borrowed").symlink_to(data_root / "proj-b" / "b-data")
    for path in [
        "../proj-b/b-data",
        str(data_root / "proj-b" / "b-data"),
        "borrowed",
        str(data_root),
        "../open",
    ]:
        for user in ["owen", "admin"]:  # the area is the project's, whoever registers
            refused = post(api, tenants, user, "/datasets", {**BOOKS, "path": path})
            assert_error(refused, 422, "path", reason=area)
    whole = post(api, tenants, "owen", "/datasets", {**BOOKS, "path": "."})
    assert_error(whole, 422, "path", reason="not the area itself")

    # proj-b's area is proj-b's own directory of the root: a link to another place is none.
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "b-data").mkdir(parents=True)
    (elsewhere / "b-data" / "part-0.txt").write_text("b\n")
    (data_root / "proj-b").rename(tmp_path / "b-area")
    b_data = {**BOOKS, "name": "b-data", "project": "proj-b", "path": "b-data"}
    missing = post(api, tenants, "admin", "/datasets", b_data)
    create = f"create {data_root.resolve() / 'proj-b'}/ and put the data of its datasets there"
    assert_error(missing, 422, "path", reason=create)
    for target in [elsewhere, data_root / "proj-a"]:
        (data_root / "proj-b").symlink_to(target)
        linked = post(api, tenants, "admin", "/datasets", {**b_data, "path": "books"})
        assert_error(linked, 422, "path", reason="must be a directory of the data root itself")
        (data_root / "proj-b").unlink()
    assert tenants.admin.datasets() == []
    (tmp_path / "b-area").rename(data_root / "proj-b")
    made = post(api, tenants, "admin", "/datasets", b_data)
    assert made.status_code == 201, made.text
    assert made.json()["versions"][0]["path"] == str(data_root.resolve() / "proj-b" / "b-data")


def test_who_may_register(api: httpx.Client, tenants: Tenants, data_root: Path) -> None:
    facility = {**BOOKS, "name": "open-web", "project": None, "path": "open"}
    check_all(
        [
            ("alice: a member", post(api, tenants, "alice", "/datasets", BOOKS), 403, None),
            ("vera: a viewer", post(api, tenants, "vera", "/datasets", BOOKS), 403, None),
            ("bob: not in proj-a", post(api, tenants, "bob", "/datasets", BOOKS), 404, "project"),
            ("owen: facility", post(api, tenants, "owen", "/datasets", facility), 403, None),
            ("olga: facility", post(api, tenants, "olga", "/datasets", facility), 403, None),
        ]
    )
    created = post(api, tenants, "admin", "/datasets", facility)
    assert (created.status_code, created.json()["project"]) == (201, None)


def test_visibility_follows_ownership_and_grants(
    api: httpx.Client, tenants: Tenants, data_root: Path
) -> None:
    assert post(api, tenants, "owen", "/datasets", BOOKS).status_code == 201
    facility = {**BOOKS, "name": "open-web", "project": None, "path": "open"}
    assert post(api, tenants, "admin", "/datasets", facility).status_code == 201
    assert [d["name"] for d in tenants.as_("bob").datasets()] == ["open-web"]
    assert [d["name"] for d in tenants.as_("carol").datasets()] == ["open-web"]
    assert [d["name"] for d in tenants.as_("olga").datasets()] == ["nl-books", "open-web"]
    for path in ["/datasets/nl-books", "/datasets/nl-books/grants"]:
        assert_error(api.get(path, headers=tenants.headers("bob")), 404, "dataset")
    versions = post(api, tenants, "bob", "/datasets/nl-books/versions", {"path": "books-v2"})
    assert_error(versions, 404, "dataset")

    tenants.as_("owen").grant_dataset(
        "nl-books", project="proj-b", purpose="evaluation", until=IN_A_MONTH
    )
    seen = tenants.as_("bob").dataset("nl-books")
    assert [g["project"] for g in seen["grants"]] == ["proj-b"]
    # He sees it now, but may not change it: a 403, not a 404.
    refused = post(api, tenants, "bob", "/datasets/nl-books/versions", {"path": "books-v2"})
    assert_error(refused, 403)


def test_a_new_version_changes_only_the_terms_given(
    api: httpx.Client, tenants: Tenants, data_root: Path
) -> None:
    assert post(api, tenants, "owen", "/datasets", BOOKS).status_code == 201
    later = (NOW + timedelta(days=400)).isoformat()
    made = post(
        api,
        tenants,
        "owen",
        "/datasets/nl-books/versions",
        {"path": "books-v2", "retention_until": later, "dpia_ref": "DPIA-7"},
    )
    assert made.status_code == 201, made.text
    version = made.json()
    assert set(version) == VERSION_FIELDS
    assert (
        version["dataset"],
        version["version"],
        version["legal_basis"],
        version["dpia_ref"],
    ) == (
        "nl-books",
        2,
        "public_task",
        "DPIA-7",
    )
    first, second = tenants.as_("owen").dataset("nl-books")["versions"]
    assert datetime.fromisoformat(first["retention_until"]) == datetime.fromisoformat(IN_A_YEAR)
    assert datetime.fromisoformat(second["retention_until"]) == datetime.fromisoformat(later)
    assert first["sha256"] != second["sha256"]

    def new(user: str, body: dict[str, Any], name: str = "nl-books") -> httpx.Response:
        return post(api, tenants, user, f"/datasets/{name}/versions", body)

    check_all(
        [
            ("null", new("owen", {"path": "other", "classification": None}), 422, "classification"),
            ("no basis", new("owen", {"path": "other", "legal_basis": None}), 422, "legal_basis"),
            ("overlap", new("owen", {"path": "books-v2"}), 422, "path"),
            ("other area", new("owen", {"path": "../proj-b/b-data"}), 422, "path"),
            ("alice", new("alice", {"path": "other"}), 403, None),
            ("unknown", new("owen", {"path": "other"}, name="nope"), 404, "dataset"),
        ]
    )


def test_grants_within_the_terms_and_revocation_once(
    api: httpx.Client, tenants: Tenants, data_root: Path
) -> None:
    assert post(api, tenants, "owen", "/datasets", BOOKS).status_code == 201
    url = "/datasets/nl-books/grants"
    ok = {"project": "proj-b", "purpose": "evaluation", "until": IN_A_MONTH}
    beyond = (NOW + timedelta(days=366)).isoformat()

    def ask(change: dict[str, Any], user: str = "owen") -> httpx.Response:
        return post(api, tenants, user, url, {**ok, **change})

    check_all(
        [
            ("beyond retention", ask({"until": beyond}), 422, "until"),
            ("past", ask({"until": "2001-01-01"}), 422, "until"),
            ("not a date", ask({"until": "later"}), 422, "until"),
            ("purpose", ask({"purpose": "ads"}), 422, "purpose"),
            ("empty purpose", ask({"purpose": ""}), 422, "purpose"),
            ("owner", ask({"project": "proj-a"}), 422, "project"),
            ("nobody", ask({"project": "nope"}), 404, "project"),
            ("alice", ask({}, "alice"), 403, None),
            ("bob", ask({}, "bob"), 404, "dataset"),
        ]
    )
    made = post(api, tenants, "owen", url, ok)
    assert made.status_code == 201, made.text
    grant = made.json()
    assert set(grant) == GRANT_FIELDS
    assert (grant["project"], grant["active"], grant["granted_by"], grant["revoked_at"]) == (
        "proj-b",
        True,
        "owen",
        None,
    )
    assert tenants.as_("owen").dataset_grants("nl-books") == [grant]

    revoke = f"{url}/{grant['id']}/revoke"
    assert_error(post(api, tenants, "owen", revoke, {}), 422, "reason")
    assert_error(post(api, tenants, "alice", revoke, {"reason": "x"}), 403)
    assert_error(post(api, tenants, "owen", f"{url}/999/revoke", {"reason": "x"}), 404, "grant_id")
    assert_error(post(api, tenants, "owen", f"{url}/0/revoke", {"reason": "x"}), 422, "grant_id")
    assert_error(post(api, tenants, "owen", f"{url}/{2**40}/revoke", {"reason": "x"}), 422)
    revoked = tenants.as_("owen").revoke_dataset_grant("nl-books", grant["id"], reason="done")
    assert (revoked["active"], revoked["revoked_by"], revoked["revoke_reason"]) == (
        False,
        "owen",
        "done",
    )
    with pytest.raises(ApiError) as twice:
        tenants.as_("owen").revoke_dataset_grant("nl-books", grant["id"], reason="again")
    assert twice.value.status == 409
    actions = [e["action"] for e in tenants.admin.audit(object="dataset:nl-books")]
    assert actions[-2:] == ["dataset.grant", "dataset.revoke"]
    # The grantee's members read the grant's events: they are about their project.
    bob_sees = [e["action"] for e in tenants.as_("bob").audit(object="dataset:nl-books")]
    assert bob_sees == ["dataset.grant", "dataset.revoke"]
