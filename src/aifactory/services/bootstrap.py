"""First start of an empty facility: an admin, a `default` organisation and project, the usual
access programmes, and a starter allocation so the default project can run GPU work at once.

The programmes are a starting point an admin edits (`PUT /api/v1/programmes/{name}`): the
pools' capacity shares add up to the whole facility, research is free (100 % subsidised, and
still metered), commercial work pays the full tariff.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.tenancy import FacilityRole, OrgKind, ProjectRole
from aifactory.governance import audit
from aifactory.services.allocations import Grant, open_allocation
from aifactory.services.auth import issue_token
from aifactory.services.tenancy import add_membership
from aifactory.store.models import Organisation, Programme, Project, User

DEFAULT = "default"
DAY_S = 86400
STARTER_GPU_HOURS = 100.0
K = OrgKind


def _programme(
    name: str,
    title: str,
    kinds: tuple[OrgKind, ...],
    *,
    gpu_hour: str,
    subsidy_pct: int,
    priority_weight: int,
    preemptible: bool,
    share: float,
    max_gpus: int | None = None,
    starter_gpu_hours: float = 0.0,
) -> dict[str, object]:
    return {
        "name": name,
        "title": title,
        "eligible_kinds": [k.value for k in kinds],
        "gpu_tariffs": {"*": str(Decimal(gpu_hour))},
        "cpu_tariff": "0.02",
        # € per million tokens through the gateway: its service charge, on top of the GPU time
        # the endpoints' replicas hold (billed as any job's).
        "prompt_token_tariff": "0.20",
        "completion_token_tariff": "0.60",
        "subsidy_pct": subsidy_pct,
        "priority_weight": priority_weight,
        "preemptible_default": preemptible,
        "max_gpus_per_job": max_gpus,
        "capacity_share": share,
        "starter_gpu_hours": starter_gpu_hours,
        "starter_days": 90,
    }


DEFAULT_PROGRAMMES = (
    _programme(
        "research",
        "Open research (universities and research institutes)",
        (K.UNIVERSITY, K.RESEARCH_INSTITUTE),
        gpu_hour="2.50",
        subsidy_pct=100,
        priority_weight=100,
        preemptible=False,
        share=0.5,
        starter_gpu_hours=STARTER_GPU_HOURS,
    ),
    _programme(
        "startup",
        "Startup accelerator",
        (K.STARTUP,),
        gpu_hour="2.50",
        subsidy_pct=75,
        priority_weight=50,
        preemptible=True,
        share=0.15,
        max_gpus=16,
        starter_gpu_hours=50.0,
    ),
    _programme(
        "sme",
        "SME innovation",
        (K.SME,),
        gpu_hour="2.50",
        subsidy_pct=50,
        priority_weight=25,
        preemptible=True,
        share=0.1,
        max_gpus=16,
    ),
    _programme(
        "government",
        "Public sector",
        (K.GOVERNMENT,),
        gpu_hour="2.50",
        subsidy_pct=0,
        priority_weight=75,
        preemptible=False,
        share=0.1,
    ),
    _programme(
        "commercial",
        "Commercial use at cost price",
        (K.COMPANY, K.SME, K.STARTUP),
        gpu_hour="3.20",
        subsidy_pct=0,
        priority_weight=0,
        preemptible=False,
        share=0.15,
    ),
)


def bootstrap(session: Session, *, now: float, admin_name: str = "admin") -> str | None:
    """Create the first admin and return their token once; None if the facility has users."""
    if session.scalars(select(User.id).limit(1)).first() is not None:
        return None
    admin = User(
        name=admin_name, email=None, facility_role=FacilityRole.ADMIN.value, created_at=now
    )
    org = Organisation(name=DEFAULT, kind=OrgKind.RESEARCH_INSTITUTE.value, created_at=now)
    session.add_all([admin, org])
    session.flush()
    project = Project(name=DEFAULT, organisation_id=org.id, created_at=now)
    session.add(project)
    session.flush()
    add_membership(session, project, admin, ProjectRole.OWNER, now=now)
    _seed_programmes(session, project, now=now)
    _, token = issue_token(session, admin, name="first admin token", now=now)
    audit.record(
        session,
        actor="bootstrap",
        action="user.create",
        object=f"user:{admin_name}",
        at=now,
        detail={"facility_role": FacilityRole.ADMIN.value},
    )
    return token


def _seed_programmes(session: Session, project: Project, *, now: float) -> None:
    if session.scalars(select(Programme.id).limit(1)).first() is not None:
        return
    programmes = [Programme(created_at=now, **fields) for fields in DEFAULT_PROGRAMMES]
    session.add_all(programmes)
    session.flush()
    research = programmes[0]
    open_allocation(
        session,
        project=project,
        programme=research,
        grant=Grant(research.starter_gpu_hours, now, now + research.starter_days * DAY_S),
        name=f"{DEFAULT}-starter",
        proposal_id=None,
        actor="bootstrap",
        reason="starter allocation of the default project",
        now=now,
    )
