"""Datasets and grants in the portal (HTTP, no browser): the terms each version is held under,
who sees what, and granting and revoking through the forms.

tests.api.conftest's `tenants`: proj-a (owen owner, alice member, vera viewer), proj-b (bob),
carol in no project. owen registers nl-books (personal data, Art. 6(1)(e), NL) for proj-a
through the API, from the live server's data root.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.web.conftest import PortalSession

NOW = datetime.now(UTC)


@pytest.fixture
def books(tenants: Tenants, live_server: LiveServer) -> str:
    root = live_server.state.data_root
    assert root is not None
    (root / "proj-a" / "books").mkdir(parents=True)
    (root / "proj-a" / "books" / "part-0.txt").write_text("een boek\n")
    tenants.as_("owen").register_dataset(
        "nl-books",
        project="proj-a",
        path="books",
        controller="UvA",
        processor="AI Factory NL",
        classification="personal",
        legal_basis="public_task",
        purposes=["llm-training", "evaluation"],
        residency="NL",
        retention_until=NOW + timedelta(days=365),
        licence="CC-BY-4.0",
    )
    return "nl-books"


def test_the_datasets_page_shows_legal_basis_residency_and_versions(
    pages: Callable[[str], PortalSession], tenants: Tenants, books: str
) -> None:
    alice = pages(tenants.tokens["alice"])
    listing = alice.get("/datasets")
    assert listing.status_code == 200
    row = re.search(r'<a href="/datasets/nl-books">nl-books</a>.*?</tr>', listing.text, re.S)
    assert row, listing.text
    for shown in ("proj-a", "personal", "Art. 6(1)(e) public task", "<td>NL</td>", "CC-BY-4.0"):
        assert shown in row.group(0), shown
    assert "aifactory datasets register" not in listing.text, "a member does not register"
    assert "aifactory datasets register" in pages(tenants.tokens["owen"]).get("/datasets").text

    detail = alice.get(f"/datasets/{books}")
    assert detail.status_code == 200
    sha = tenants.as_("alice").dataset(books)["versions"][0]["sha256"]
    assert sha in detail.text
    assert "9 B" in detail.text  # "een boek\n"
    assert "llm-training, evaluation" in detail.text
    assert "Grant a project its use" not in detail.text, "only the owners grant"


def test_another_projects_dataset_does_not_exist_for_an_outsider(
    pages: Callable[[str], PortalSession], tenants: Tenants, books: str
) -> None:
    for outsider in ("bob", "carol"):
        session = pages(tenants.tokens[outsider])
        assert session.get(f"/datasets/{books}").status_code == 404
        assert books not in session.get("/datasets").text
        refused = session.post(
            f"/datasets/{books}/grants",
            {"project": "proj-b", "purpose": "evaluation", "until": "2030-01-01"},
        )
        assert refused.status_code == 404
    assert tenants.as_("owen").dataset_grants(books) == []


def test_an_owner_grants_and_revokes_through_the_forms(
    pages: Callable[[str], PortalSession], tenants: Tenants, books: str
) -> None:
    owen = pages(tenants.tokens["owen"])
    page = owen.get(f"/datasets/{books}")
    assert "Grant a project its use" in page.text
    until = (NOW + timedelta(days=30)).strftime("%Y-%m-%d")
    wrong = owen.post(
        f"/datasets/{books}/grants", {"project": "proj-b", "purpose": "ads", "until": until}
    )
    assert wrong.status_code == 422
    assert "personal data may be used only for its stated purposes" in wrong.text
    assert re.search(r'id="purpose"[^>]*aria-invalid="true"', wrong.text)
    too_long = owen.post(
        f"/datasets/{books}/grants",
        {"project": "proj-b", "purpose": "evaluation", "until": "2099-01-01"},
    )
    assert too_long.status_code == 422
    assert "cannot outlive the dataset&#39;s retention period" in too_long.text
    nobody = owen.post(
        f"/datasets/{books}/grants", {"project": "proj-z", "purpose": "evaluation", "until": until}
    )
    assert nobody.status_code == 422
    assert "no project named &#39;proj-z&#39;" in nobody.text

    granted = owen.post(
        f"/datasets/{books}/grants", {"project": "proj-b", "purpose": "evaluation", "until": until}
    )
    assert granted.status_code == 303, granted.text
    (grant,) = tenants.as_("owen").dataset_grants(books)
    assert (grant["project"], grant["purpose"], grant["active"]) == ("proj-b", "evaluation", True)
    assert pages(tenants.tokens["bob"]).get(f"/datasets/{books}").status_code == 200

    revoke = f"/datasets/{books}/grants/{grant['id']}/revoke"
    assert owen.post(revoke, {"reason": " "}).status_code == 422
    assert pages(tenants.tokens["alice"]).post(revoke, {"reason": "no"}).status_code == 403
    assert owen.post(revoke, {"reason": "project ended"}).status_code == 303
    (grant,) = tenants.as_("owen").dataset_grants(books)
    assert (grant["active"], grant["revoked_by"], grant["revoke_reason"]) == (
        False,
        "owen",
        "project ended",
    )
    shown = owen.get(f"/datasets/{books}").text
    assert "revoked</span>" in shown
    assert "by owen: project ended" in shown
