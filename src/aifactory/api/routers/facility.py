"""Health and the facility's state, and the operators' admission switch."""

from __future__ import annotations

from fastapi import APIRouter

from aifactory import __version__
from aifactory.api.deps import CurrentUser, Now, ReadSession, StateDep, WriteSession
from aifactory.api.schemas import AdmissionChange, FacilityOut, Health, NodeOut
from aifactory.errors import NotReady
from aifactory.services import facility

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
