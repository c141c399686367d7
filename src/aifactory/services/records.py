"""Records of processing (GDPR Art. 30) for admins and auditors: JSON or CSV, and audited.

The export itself is read in the caller's read session; the `processing_records.export` event
is appended afterwards in a short transaction of its own, as every audited read is
(governance.audit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from aifactory.domain.permissions import Action
from aifactory.governance import audit
from aifactory.governance.records import processing_records, records_csv, records_json
from aifactory.services.principal import Principal
from aifactory.store.db import Database

AUDIT_OBJECT = 200  # the audit log's object column: String(200)

Format = Literal["json", "csv"]


@dataclass(frozen=True, slots=True)
class Export:
    text: str
    records: int


def export_records(
    session: Session,
    principal: Principal,
    *,
    controller: str | None,
    output: Format,
    now: float,
) -> Export:
    principal.authorize(Action.PROCESSING_RECORDS_EXPORT)
    found = processing_records(session, controller=controller)
    if output == "csv":
        return Export(records_csv(found), len(found))
    return Export(records_json(found, controller=controller, generated_at=now), len(found))


def record_export(
    db: Database,
    principal: Principal,
    *,
    controller: str | None,
    output: Format,
    records: int,
    now: float,
) -> None:
    audit.record_apart(
        db,
        at=now,
        actor=principal.name,
        action="processing_records.export",
        # clipped to the audit's object column (String(200)); the detail keeps it whole
        object=f"controller:{controller}"[:AUDIT_OBJECT] if controller else "processing_records",
        source=principal.source,
        detail={"controller": controller, "format": output, "records": records},
    )
