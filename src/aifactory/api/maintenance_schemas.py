"""Maintenance windows over the API: what an operator sends, what everyone reads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from aifactory.api.units import Moment, moment_at
from aifactory.domain.node_health import REASON_MAX
from aifactory.faces.inputs import Request
from aifactory.services.maintenance import WindowView

NodeId = Annotated[str, Field(min_length=1, max_length=128)]


class MaintenanceCreate(Request):
    nodes: list[NodeId] | None = Field(
        None,
        min_length=1,
        max_length=10_000,
        description="the nodes' ids; leave out for every node (those added later too)",
    )
    begins_at: Moment
    ends_at: Moment
    reason: str = Field(
        min_length=1, max_length=REASON_MAX, description="why: shown to everyone with the window"
    )


class AffectedJobOut(BaseModel):
    job_id: int
    nodes: list[str]
    limit_ends_at: datetime = Field(description="when its time limit ends: after the window begins")


class MaintenanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    nodes: list[str] = Field(description='the nodes, or ["*"]: every node')
    all_nodes: bool
    begins_at: datetime
    ends_at: datetime
    reason: str
    state: str = Field(description="upcoming, active, over or cancelled")
    created_by: str
    created_at: datetime
    cancelled_by: str | None
    cancelled_at: datetime | None
    affected: list[AffectedJobOut] = Field(
        default_factory=list,
        description="(in the answer to create) running jobs whose time limit reaches into the "
        "window: the scheduler does not stop them",
    )
    notified: int = Field(0, description="notifications queued by this change")

    @classmethod
    def of(cls, view: WindowView) -> MaintenanceOut:
        return cls(
            id=view.id,
            nodes=list(view.nodes),
            all_nodes=view.all_nodes,
            begins_at=moment_at(view.begins_at),
            ends_at=moment_at(view.ends_at),
            reason=view.reason,
            state=view.state,
            created_by=view.created_by,
            created_at=moment_at(view.created_at),
            cancelled_by=view.cancelled_by,
            cancelled_at=None if view.cancelled_at is None else moment_at(view.cancelled_at),
            affected=[
                AffectedJobOut(
                    job_id=a.job_id, nodes=list(a.nodes), limit_ends_at=moment_at(a.limit_ends_at)
                )
                for a in view.affected
            ],
            notified=view.notified,
        )
