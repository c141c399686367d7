"""Response schemas of the audit log's routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from aifactory.domain.audit import ChainCheck


class AuditEventOut(BaseModel):
    seq: int
    at: datetime
    at_unix: float = Field(description="`at` exactly, as UNIX seconds: the value the hash covers")
    actor: str
    action: str = Field(description="what was done, e.g. job.submit, token.revoke, auth.failed")
    object: str = Field(description="what it was done to, e.g. job:12, user:alice")
    project_id: int | None
    source: str | None = Field(description="the client address the request came from")
    outcome: str = Field(description="ok, denied or failed")
    detail: dict[str, Any]
    prev_hash: str
    hash: str = Field(description="SHA-256 of the event's canonical form (docs/audit.md)")

    @classmethod
    def of(cls, event: Any) -> AuditEventOut:
        return cls(
            seq=event.seq,
            at=datetime.fromtimestamp(event.at, UTC),
            at_unix=event.at,
            actor=event.actor,
            action=event.action,
            object=event.object,
            project_id=event.project_id,
            source=event.source,
            outcome=event.outcome,
            detail=event.detail,
            prev_hash=event.prev_hash,
            hash=event.hash,
        )


class AuditVerifyOut(BaseModel):
    ok: bool
    checked: int = Field(description="events found intact, in order, before any break")
    first_bad_seq: int | None
    reason: str | None

    @classmethod
    def of(cls, check: ChainCheck) -> AuditVerifyOut:
        return cls(
            ok=check.ok,
            checked=check.checked,
            first_bad_seq=check.first_bad_seq,
            reason=check.reason,
        )
