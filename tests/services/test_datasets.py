"""The dataset registry on a real database (SQLite and PostgreSQL) and a real data root:
registration with lawful terms, versions in their project's area, who sees and does what,
grants and their use.

The facility is tests.services.accounting_world's: project `lab` (owen owner, alice member,
vera viewer), `nlp` (rex owner), `shop` (bob owner), olga an operator; here also audrey, an
auditor. The data root has areas for lab and shop (not nlp) and facility data at its top.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aifactory.domain.tenancy import FacilityRole
from aifactory.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aifactory.governance import storage
from aifactory.services.dataset_grants import (
    grant_dataset,
    list_grants,
    may_use,
    revoke_grant,
    usable_grant,
)
from aifactory.services.dataset_views import DatasetView, GrantView
from aifactory.services.datasets import (
    DatasetSpec,
    VersionTerms,
    add_version,
    get_dataset,
    list_datasets,
    register_dataset,
)
from aifactory.services.tenancy import create_project, create_user
from aifactory.store.db import Database
from aifactory.store.models import AuditEvent, Dataset, Project, ProjectClosure
from tests.services.accounting_world import DAY, T0, build_world, who

NOW = T0 + 3600.0
PERSONAL = VersionTerms(
    classification="personal",
    legal_basis="public_task",
    special_condition=None,
    dpia_ref=None,
    purposes=("llm-training", "evaluation"),
    residency="NL",
    retention_until=NOW + 365 * DAY,
    licence="CC-BY-4.0",
)
PUBLIC = replace(PERSONAL, classification="public", legal_basis=None, purposes=())


@pytest.fixture
def world(db: Database) -> Database:
    build_world(db)
    with db.session() as s:
        admin = who(s, "admin")
        create_user(s, admin, name="audrey", email=None, facility_role=FacilityRole.AUDITOR, now=T0)
    return db


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """lab's area with its data, shop's with its own, and facility data in the root itself."""
    made = tmp_path / "data"
    for name in ["lab/books", "lab/books-v2", "lab/census", "lab/other", "shop/census", "open"]:
        (made / name).mkdir(parents=True)
        (made / name / "part-0.txt").write_text(f"{name}\n")
    return made


def area_of(root: Path, project: str) -> str:
    """The reason a path outside the project's area is refused ends with."""
    return f"the data of project {project}'s datasets lies under {root.resolve() / project}/"


def register(
    db: Database,
    root: Path | None,
    *,
    user: str = "owen",
    name: str = "nl-books",
    project: str | None = "lab",
    path: str = "books",
    terms: VersionTerms = PERSONAL,
) -> DatasetView:
    spec = DatasetSpec(name, project, controller="UvA", processor="AI Factory NL")
    with db.read() as s:
        principal = who(s, user)
    return register_dataset(
        db, principal, spec=spec, path=path, terms=terms, data_root=root, now=NOW
    )


def grant(db: Database, user: str = "owen", **change: Any) -> GrantView:
    fields: dict[str, Any] = {
        "dataset": "nl-books",
        "project": "shop",
        "purpose": "evaluation",
        "until": NOW + 30 * DAY,
        **change,
    }
    with db.session() as s:
        return grant_dataset(s, who(s, user), now=NOW, **fields)


def visible(db: Database, user: str, now: float = NOW) -> list[str]:
    with db.read() as s:
        return [v.dataset.name for v in list_datasets(s, who(s, user), now=now)]


def events(db: Database, action: str) -> list[AuditEvent]:
    with db.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_a_dataset_is_registered_with_its_first_version_read_only(
    world: Database, root: Path
) -> None:
    view = register(world, root)
    assert (view.dataset.name, view.project, view.dataset.controller) == ("nl-books", "lab", "UvA")
    (version,) = view.versions
    assert (version.version, version.state, version.files, version.size_bytes) == (
        1,
        "present",
        1,
        len("lab/books\n"),
    )
    assert version.path == str(root.resolve() / "lab" / "books")
    assert version.sha256 == storage.store(root, root / "lab/books", project="lab").sha256
    assert (version.classification, version.legal_basis, version.purposes) == (
        "personal",
        "public_task",
        ["llm-training", "evaluation"],
    )
    assert not (root / "lab/books/part-0.txt").stat().st_mode & storage.WRITE_BITS
    with world.read() as s:
        lab = s.scalars(select(Project).where(Project.name == "lab")).one()
    (registered,) = events(world, "dataset.register")
    (versioned,) = events(world, "dataset.version")
    for event in (registered, versioned):
        assert (event.actor, event.object, event.project_id) == ("owen", "dataset:nl-books", lab.id)
    assert versioned.detail is not None
    assert (versioned.detail["version"], versioned.detail["sha256"]) == (1, version.sha256)


def test_who_may_register(world: Database, root: Path) -> None:
    with pytest.raises(PermissionDenied):
        register(world, root, user="alice")  # a member of lab, not its owner
    with pytest.raises(PermissionDenied):
        register(world, root, user="vera")
    for user in ["bob", "audrey"]:  # not in lab at all: it does not exist for them
        with pytest.raises(NotFound):
            register(world, root, user=user)
    for user in ["owen", "olga"]:  # facility datasets are the admins' alone
        with pytest.raises(PermissionDenied):
            register(world, root, user=user, project=None)
    facility = register(world, root, user="admin", project=None, path="open", terms=PUBLIC)
    assert (facility.project, facility.versions[0].classification) == (None, "public")
    assert register(world, root, user="admin", name="lab-data").project == "lab"
    assert not events(world, "dataset.version")[0].project_id


def test_names_are_checked_and_unique(world: Database, root: Path) -> None:
    for bad in ["NL-Books", "-x", "a b", "x" * 65, ""]:
        with pytest.raises(InvalidInput) as refused:
            register(world, root, name=bad)
        assert refused.value.field == "name", bad
    register(world, root)
    with pytest.raises(Conflict) as taken:
        register(world, root, path="other")
    assert taken.value.field == "name"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"legal_basis": "because"}, "legal_basis"),
        ({"legal_basis": None}, "legal_basis"),
        ({"classification": "secret"}, "classification"),
        ({"residency": "US"}, "residency"),
        ({"purposes": ()}, "purposes"),
        ({"classification": "special_category"}, "special_condition"),
        (
            {"classification": "special_category", "special_condition": "public_health"},
            "dpia_ref",
        ),
        ({"special_condition": "maybe"}, "special_condition"),
        ({"retention_until": NOW}, "retention_until"),
        ({"retention_until": float("inf")}, "retention_until"),
        ({"licence": " "}, "licence"),
    ],
)
def test_unlawful_terms_are_refused_naming_the_field_and_leave_the_data_as_it_was(
    world: Database, root: Path, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        register(world, root, terms=replace(PERSONAL, **change))
    assert refused.value.field == field
    assert (root / "lab/books").stat().st_mode & storage.WRITE_BITS
    assert visible(world, "admin") == []


def test_special_category_data_with_condition_and_dpia_is_lawful(
    world: Database, root: Path
) -> None:
    terms = replace(
        PERSONAL,
        classification="special_category",
        special_condition="archiving_research_statistics",
        dpia_ref="DPIA-2026-04",
    )
    (version,) = register(world, root, terms=terms).versions
    assert (version.special_condition, version.dpia_ref) == (
        "archiving_research_statistics",
        "DPIA-2026-04",
    )


def test_data_paths_are_checked_against_the_root_and_other_versions(
    world: Database, root: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret/a.txt").write_text("x")
    (root / "lab/books/leak").symlink_to(tmp_path / "secret/a.txt")
    for path in ["../../secret", str(tmp_path / "secret"), "books", "missing"]:
        with pytest.raises(InvalidInput) as refused:
            register(world, root, path=path)
        assert refused.value.field == "path", path
    (root / "lab/books/leak").unlink()
    register(world, root)
    (root / "lab/books/inner").mkdir(exist_ok=True)
    (root / "lab/books-inner.txt").write_text("x")
    for path in ["books", "books/part-0.txt", "."]:
        with pytest.raises(InvalidInput) as overlap:
            register(world, root, name="again", path=path)
        assert overlap.value.field == "path", path
    with pytest.raises(Conflict) as no_root:
        register(world, None, name="again", path="census")
    assert no_root.value.field == "path"
    assert no_root.value.message == "this facility has no data root"


def test_a_project_registers_only_data_in_its_own_area(world: Database, root: Path) -> None:
    (root / "lab/borrowed").symlink_to(root / "shop/census")
    outside = [
        "../shop/census",  # another project's area
        str(root / "shop/census"),  # the same, absolute
        str(root.resolve() / "shop/census"),
        "../open",  # facility data in the root
        str(root / "open"),
        "..",  # the root itself
        str(root),
        "borrowed",  # a link in lab's area into shop's
        "books/../../shop/census",
    ]
    for user in ["owen", "admin"]:  # the area is the dataset's project's, whoever registers
        for path in outside:
            with pytest.raises(InvalidInput) as refused:
                register(world, root, user=user, path=path)
            assert refused.value.field == "path", path
            assert refused.value.message.endswith(area_of(root, "lab")), refused.value.message
    (root / "lab/other/peek").symlink_to(root / "shop/census/part-0.txt")
    with pytest.raises(InvalidInput) as peeks:  # a link below the version, into shop's area
        register(world, root, path="other")
    assert peeks.value.message == (
        f"peek is a link that leads outside project lab's area {root.resolve() / 'lab'}/"
    )
    for path in [".", str(root / "lab")]:
        with pytest.raises(InvalidInput) as whole:
            register(world, root, path=path)
        assert whole.value.field == "path"
        assert "not the area itself" in whole.value.message
    assert (root / "shop/census").stat().st_mode & storage.WRITE_BITS  # shop's data untouched
    assert visible(world, "admin") == []

    # In its own area, relative or absolute; and a new version stays there too.
    view = register(world, root, path=str(root / "lab/books"))
    assert view.versions[0].path == str(root.resolve() / "lab/books")
    with world.read() as s:
        owen = who(s, "owen")
    with pytest.raises(InvalidInput) as version:
        add_version(
            world,
            owen,
            dataset="nl-books",
            path="../shop/census",
            changes={},
            data_root=root,
            now=NOW,
        )
    assert (version.value.field, version.value.message.endswith(area_of(root, "lab"))) == (
        "path",
        True,
    )
    # Facility datasets, the admins', lie anywhere in the root.
    facility = register(
        world, root, user="admin", name="shop-copy", project=None, path="shop/census"
    )
    assert facility.versions[0].path == str(root.resolve() / "shop/census")


def test_a_project_area_is_a_real_directory_of_the_root(
    world: Database, root: Path, tmp_path: Path
) -> None:
    def refused(path: str = "corpus") -> InvalidInput:
        with pytest.raises(InvalidInput) as refusal:
            register(world, root, user="rex", name="nlp-corpus", project="nlp", path=path)
        assert refusal.value.field == "path"
        return refusal.value

    nlp = root.resolve() / "nlp"
    assert refused().message == (
        f"project nlp has no area in the data root yet: create {nlp}/ and put the data of its "
        "datasets there"
    )
    (tmp_path / "elsewhere/corpus").mkdir(parents=True)
    (tmp_path / "elsewhere/corpus/part-0.txt").write_text("corpus\n")
    for target in [tmp_path / "elsewhere", root / "shop"]:  # out of the root; another area
        (root / "nlp").symlink_to(target)
        for path in ["corpus", "census", str(root / "nlp/corpus"), str(target / "corpus")]:
            problem = refused(path).message
            assert problem.startswith(f"{nlp} must be a directory of the data root itself"), path
        (root / "nlp").unlink()
    (root / "nlp").write_text("not a directory\n")
    assert "must be a directory of the data root itself" in refused().message
    (root / "nlp").unlink()
    assert (tmp_path / "elsewhere/corpus").stat().st_mode & storage.WRITE_BITS  # untouched
    (root / "nlp/corpus").mkdir(parents=True)
    (root / "nlp/corpus/part-0.txt").write_text("corpus\n")
    made = register(world, root, user="rex", name="nlp-corpus", project="nlp", path="corpus")
    assert made.versions[0].path == str(nlp / "corpus")


def test_a_project_whose_name_is_no_directory_has_no_area(world: Database, root: Path) -> None:
    """The API takes only names that are one path component; the service refuses the rest."""
    with world.session() as s:
        create_project(s, who(s, "admin"), name="../lab", organisation="uva", owner="owen", now=T0)
    with pytest.raises(InvalidInput) as refused:
        register(world, root, project="../lab", path="books")
    assert refused.value.field == "path"
    assert "cannot be a directory of the data root" in refused.value.message
    assert (root / "lab/books").stat().st_mode & storage.WRITE_BITS


def test_a_new_version_keeps_the_terms_it_does_not_change(world: Database, root: Path) -> None:
    first = register(world, root).versions[0]
    with world.read() as s:
        owen = who(s, "owen")
    later = NOW + 400 * DAY
    view = add_version(
        world,
        owen,
        dataset="nl-books",
        path="books-v2",
        changes={"retention_until": later},
        data_root=root,
        now=NOW,
    )
    old, new = view.versions
    assert (old.id, old.sha256, old.retention_until) == (first.id, first.sha256, NOW + 365 * DAY)
    assert (new.version, new.retention_until, new.legal_basis, new.purposes) == (
        2,
        later,
        "public_task",
        ["llm-training", "evaluation"],
    )
    assert new.sha256 != old.sha256
    assert [e.detail["version"] for e in events(world, "dataset.version") if e.detail] == [1, 2]

    def again(user: str, **change: Any) -> None:
        with world.read() as s:
            principal = who(s, user)
        add_version(world, principal, data_root=root, now=NOW, **{"dataset": "nl-books", **change})

    with pytest.raises(InvalidInput) as unlawful:
        again("owen", path="census", changes={"legal_basis": None})
    assert unlawful.value.field == "legal_basis"
    with pytest.raises(InvalidInput) as unknown:
        again("owen", path="census", changes={"name": "x"})
    assert unknown.value.field == "name"
    with pytest.raises(InvalidInput) as overlap:
        again("owen", path="books-v2", changes={})
    assert overlap.value.field == "path"
    with pytest.raises(PermissionDenied):
        again("alice", path="census", changes={})
    with pytest.raises(NotFound):
        again("bob", path="census", changes={})


def test_who_sees_which_dataset(world: Database, root: Path) -> None:
    register(world, root)
    register(world, root, user="bob", name="shop-logs", project="shop", path="census")
    assert visible(world, "admin") == ["nl-books", "shop-logs"]  # two areas, two "census"
    register(world, root, user="admin", name="open-web", project=None, path="open", terms=PUBLIC)
    everything = ["nl-books", "open-web", "shop-logs"]
    for user in ["admin", "olga", "audrey"]:
        assert visible(world, user) == everything, user
    for user in ["owen", "alice", "vera"]:
        assert visible(world, user) == ["nl-books", "open-web"], user
    assert visible(world, "bob") == ["open-web", "shop-logs"]
    assert visible(world, "rex") == ["open-web"]
    with world.read() as s, pytest.raises(NotFound) as hidden:
        get_dataset(s, who(s, "bob"), name="nl-books", now=NOW)
    assert hidden.value.field == "dataset"

    # A grant to shop shows bob the dataset, and of its grants only shop's.
    grant(world)
    grant(world, project="nlp", purpose="llm-training")
    assert visible(world, "bob") == everything
    with world.read() as s:
        seen_by_bob = list_grants(s, who(s, "bob"), dataset="nl-books", now=NOW)
        seen_by_vera = list_grants(s, who(s, "vera"), dataset="nl-books", now=NOW)
    assert [g.project for g in seen_by_bob] == ["shop"]
    assert [g.project for g in seen_by_vera] == ["shop", "nlp"]


def test_a_grant_stays_within_the_terms(world: Database, root: Path) -> None:
    register(world, root)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"until": NOW + 366 * DAY}, "until"),  # after the retention ends
        ({"until": NOW}, "until"),
        ({"purpose": "advertising"}, "purpose"),  # not one of the personal data's purposes
        ({"purpose": " "}, "purpose"),
        ({"project": "lab"}, "project"),  # the owner needs no grant
    ]
    for change, field in cases:
        with pytest.raises(InvalidInput) as refused:
            grant(world, **change)
        assert refused.value.field == field, change
    with pytest.raises(NotFound) as nobody:
        grant(world, project="nope")
    assert nobody.value.field == "project"
    made = grant(world, until=NOW + 365 * DAY)  # to the last day of retention
    assert (made.project, made.active, made.grant.granted_by) == ("shop", True, "owen")
    with pytest.raises(Conflict):
        grant(world, until=NOW + 10 * DAY)  # the same project and purpose, still granted

    # Public data may be granted for any purpose.
    register(world, root, user="admin", name="open-web", project=None, path="open", terms=PUBLIC)
    assert grant(world, user="admin", dataset="open-web", purpose="anything").active


def test_who_may_grant(world: Database, root: Path) -> None:
    register(world, root)
    register(world, root, user="admin", name="open-web", project=None, path="open", terms=PUBLIC)
    for user in ["alice", "vera", "olga", "audrey"]:
        with pytest.raises(PermissionDenied):
            grant(world, user=user)
    with pytest.raises(NotFound):
        grant(world, user="bob")  # he cannot see it
    with pytest.raises(PermissionDenied):
        grant(world, user="owen", dataset="open-web")  # facility datasets: admins only
    grant(world, user="admin")


def test_revoking_ends_a_grant_once_and_is_recorded(world: Database, root: Path) -> None:
    register(world, root)
    made = grant(world)

    def revoke(user: str = "owen", grant_id: int = made.grant.id) -> GrantView:
        with world.session() as s:
            return revoke_grant(
                s, who(s, user), dataset="nl-books", grant_id=grant_id, reason="ended", now=NOW + 60
            )

    with pytest.raises(PermissionDenied):
        revoke("alice")
    with pytest.raises(NotFound) as missing:
        revoke(grant_id=made.grant.id + 1)
    assert missing.value.field == "grant_id"
    ended = revoke()
    assert (ended.active, ended.grant.revoked_by, ended.grant.revoke_reason) == (
        False,
        "owen",
        "ended",
    )
    assert ended.grant.revoked_at == NOW + 60
    with pytest.raises(Conflict) as twice:
        revoke()
    assert twice.value.field == "grant_id"
    (granted,) = events(world, "dataset.grant")
    (revoked,) = events(world, "dataset.revoke")
    with world.read() as s:
        shop = s.scalars(select(Project).where(Project.name == "shop")).one()
    for event in (granted, revoked):
        assert (event.object, event.project_id) == ("dataset:nl-books", shop.id)
    assert revoked.detail == {"grant": made.grant.id, "project": "shop", "reason": "ended"}
    assert grant(world).active  # granted anew after the revocation


def test_may_use_the_owner_always_others_with_a_grant_in_force(world: Database, root: Path) -> None:
    register(world, root)
    register(world, root, user="admin", name="open-web", project=None, path="open", terms=PUBLIC)
    made = grant(world, until=NOW + 10 * DAY)
    with world.read() as s:
        ids = {p.name: p.id for p in s.scalars(select(Project))}
        books = s.scalars(select(Dataset).where(Dataset.name == "nl-books")).one()
        web = s.scalars(select(Dataset).where(Dataset.name == "open-web")).one()
        assert may_use(s, books, ids["lab"], NOW)
        assert usable_grant(s, books.id, ids["lab"], NOW) is None  # the owner needs none
        found = usable_grant(s, books.id, ids["shop"], NOW)
        assert found is not None
        assert found.id == made.grant.id
        assert may_use(s, books, ids["shop"], NOW)
        assert not may_use(s, books, ids["shop"], NOW + 10 * DAY)  # it has ended
        assert not may_use(s, books, ids["nlp"], NOW)
        assert not may_use(s, web, ids["lab"], NOW)  # facility data needs a grant
    with world.session() as s:
        revoke_grant(
            s, who(s, "owen"), dataset="nl-books", grant_id=made.grant.id, reason="x", now=NOW
        )
    with world.read() as s:
        assert not may_use(s, books, ids["shop"], NOW)


def test_a_closed_project_takes_no_new_data_and_no_grants(world: Database, root: Path) -> None:
    register(world, root)
    with world.session() as s:
        for name in ("shop", "lab"):
            project_id = s.scalar(select(Project.id).where(Project.name == name))
            s.add(
                ProjectClosure(
                    project_id=project_id, requested_by="admin", requested_at=NOW, state="closed"
                )
            )
    with pytest.raises(Conflict) as to_closed:
        grant(world, user="owen")  # to shop
    assert to_closed.value.field == "project"
    with pytest.raises(Conflict) as of_closed:
        with world.read() as s:
            principal = who(s, "owen")
        add_version(
            world,
            principal,
            dataset="nl-books",
            path="books-v2",
            changes={},
            data_root=root,
            now=NOW,
        )
    assert of_closed.value.field == "dataset"
    with pytest.raises(Conflict):
        register(world, root, name="more", path="census")
