"""The facility's nodes, and operators' drain and resume (services.nodes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from aifactory.api.deps import CurrentUser, Now, ReadSession, StateDep, WriteSession
from aifactory.api.schemas import NodeDrain, NodeOut
from aifactory.services import nodes

router = APIRouter(prefix="/nodes", tags=["facility"])
NodeId = Annotated[str, Path(min_length=1, max_length=128, description="the node's id")]


@router.get("", response_model=list[NodeOut])
def list_nodes(session: ReadSession, user: CurrentUser) -> list[NodeOut]:
    """Every node: whether it takes work, why it is drained, what its health check found."""
    return [NodeOut.model_validate(n) for n in nodes.list_nodes(session, user)]


@router.post("/{node_id}/drain", response_model=NodeOut)
def drain_node(
    node_id: NodeId,
    body: NodeDrain,
    session: WriteSession,
    user: CurrentUser,
    now: Now,
    state: StateDep,
) -> NodeOut:
    """Running work finishes; nothing new is placed there (admins and operators)."""
    found = nodes.drain(
        session, user, node_id, reason=body.reason, now=now, control=state.node_control
    )
    return NodeOut.model_validate(found)


@router.post("/{node_id}/resume", response_model=NodeOut)
def resume_node(
    node_id: NodeId, session: WriteSession, user: CurrentUser, now: Now, state: StateDep
) -> NodeOut:
    """Back in service, whoever drained it (admins and operators)."""
    found = nodes.resume(session, user, node_id, now=now, control=state.node_control)
    return NodeOut.model_validate(found)
