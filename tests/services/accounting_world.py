"""A small facility for the accounting service tests, built through the services themselves.

The bootstrap (tests.conftest.seed_facility) brings the admin, the `default` project with its
100 GPU-h starter allocation under `research`, and five programmes whose capacity shares sum
to 1: research 0.5 (university, research institute; starter 100 GPU-h), startup 0.15,
sme 0.1, government 0.1, commercial 0.15 (company, SME, startup).

On top of it:
- organisation `uva` (university): project `lab` (owen owner, alice member, vera viewer) and
  project `nlp` (rex owner — rex is a reviewer, so he may not review for uva);
- organisation `spark` (startup): project `shop` (bob owner);
- rita, a reviewer with no project; fiona (finance); olga (operator);
- call `r1` under `research`: open from a day ago for 30 days, 1000 GPU-h.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from aifactory.domain.tenancy import FacilityRole, OrgKind, ProjectRole
from aifactory.services.auth import principal_of
from aifactory.services.principal import Principal
from aifactory.services.programmes import create_call
from aifactory.services.tenancy import (
    add_member,
    create_organisation,
    create_project,
    create_user,
    user_by_name,
)
from aifactory.store.db import Database
from tests.conftest import seed_facility

T0 = 1_700_000_000.0
DAY = 86400.0
H = 3600  # GPU-seconds in a GPU-hour

USERS = {
    "owen": FacilityRole.USER,
    "alice": FacilityRole.USER,
    "vera": FacilityRole.USER,
    "bob": FacilityRole.USER,
    "rita": FacilityRole.REVIEWER,
    "rex": FacilityRole.REVIEWER,
    "fiona": FacilityRole.FINANCE,
    "olga": FacilityRole.OPERATOR,
}


def who(session: Session, name: str) -> Principal:
    """The user as a request would see them now (memberships read afresh)."""
    return principal_of(session, user_by_name(session, name))


def build_world(db: Database) -> None:
    seed_facility(db, now=T0)
    with db.session() as s:
        admin = who(s, "admin")
        for name, role in USERS.items():
            create_user(s, admin, name=name, email=None, facility_role=role, now=T0)
        create_organisation(s, admin, name="uva", kind=OrgKind.UNIVERSITY, now=T0)
        create_organisation(s, admin, name="spark", kind=OrgKind.STARTUP, now=T0)
        create_project(s, admin, name="lab", organisation="uva", owner="owen", now=T0)
        create_project(s, admin, name="nlp", organisation="uva", owner="rex", now=T0)
        create_project(s, admin, name="shop", organisation="spark", owner="bob", now=T0)
        add_member(s, admin, project="lab", user="alice", role=ProjectRole.MEMBER, now=T0)
        add_member(s, admin, project="lab", user="vera", role=ProjectRole.VIEWER, now=T0)
        create_call(
            s,
            admin,
            name="r1",
            programme="research",
            title="Research call 1",
            opens_at=T0 - DAY,
            closes_at=T0 + 30 * DAY,
            budget_gpu_hours=1000.0,
            now=T0,
        )
