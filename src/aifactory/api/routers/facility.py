"""Health and the facility's state, and the operators' admission switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from aifactory import __version__
from aifactory.api.deps import CurrentUser, Now, ReadSession, StateDep, WriteSession
from aifactory.api.schemas import (
    AdmissionChange,
    FacilityOut,
    Health,
    Name,
    NodeOut,
    SiteChange,
    SiteOut,
)
from aifactory.errors import NotReady
from aifactory.services import facility, sites

SiteName = Annotated[Name, Path(description="the site's name")]

router = APIRouter(tags=["facility"])


@router.get("/health", response_model=Health)
def health(session: ReadSession, state: StateDep) -> Health:
    """200 once the database answers and the facility has registered its nodes."""
    if not facility.has_nodes(session) or not state.ready():
        raise NotReady("the facility is starting: no nodes registered yet")
    return Health(status="ok", version=__version__)


@router.get("/facility", response_model=FacilityOut)
def show_facility(session: ReadSession, user: CurrentUser) -> FacilityOut:
    found = facility.status(session, user)
    return FacilityOut(
        nodes=[NodeOut.model_validate(n) for n in found.nodes],
        jobs_by_state=found.jobs_by_state,
        admission_paused=found.admission_paused,
    )


@router.put("/facility/admission", response_model=FacilityOut)
def change_admission(
    body: AdmissionChange, session: WriteSession, user: CurrentUser, now: Now
) -> FacilityOut:
    facility.set_admission(session, user, paused=body.paused, now=now)
    return show_facility(session, user)


@router.get("/sites", response_model=list[SiteOut])
def list_sites(session: ReadSession, user: CurrentUser) -> list[SiteOut]:
    """Where the nodes stand, and the country each site's data residency counts as."""
    del user  # anyone signed in: where work may run is no secret
    return [
        SiteOut(name=s.name, country=s.country, description=s.description, nodes=n)
        for s, n in sites.list_sites(session)
    ]


@router.put("/sites/{name}", response_model=SiteOut)
def set_site(
    name: SiteName, body: SiteChange, session: WriteSession, user: CurrentUser, now: Now
) -> SiteOut:
    """Define a site or correct its country (admins and operators)."""
    sites.set_site(session, user, name, country=body.country, description=body.description, now=now)
    (found,) = [(s, n) for s, n in sites.list_sites(session) if s.name == name]
    site, nodes = found
    return SiteOut(name=site.name, country=site.country, description=site.description, nodes=nodes)
