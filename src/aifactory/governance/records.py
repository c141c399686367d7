"""Records of processing activities (GDPR Art. 30), built from what the facility holds.

One record per dataset, for its controller: the terms of its versions (a dataset's versions may
differ, so each term lists every distinct value its versions hold, in version order), who
received it (the owner project and every project ever granted it), the countries it was
actually processed in (the sites' countries of the nodes that jobs using it were placed on),
its erasures, and the security measures the facility enforces. Nothing here is typed in by
hand: it is what the registry, the grants, the placements and the erasures say.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.domain.erasure import ErasureState
from aifactory.governance.removal import iso
from aifactory.store.models import (
    Dataset,
    DatasetGrant,
    DatasetVersion,
    Erasure,
    Job,
    JobDataset,
    Node,
    Project,
    Site,
)

SECURITY_MEASURES = (
    "Jobs read a dataset only under a grant to their project for a stated purpose and until a "
    "date, checked each time a job could start; every job runs in a sandbox under its "
    "project's own unprivileged identity, in which only the dataset versions it was granted "
    "exist, mounted read-only (no other version, no other project's data or jobs and none of "
    "the facility's files can be reached by path), with no network unless the facility allows "
    "it; jobs are placed only on nodes at sites in countries the data's residency allows; "
    "dataset versions are stored read-only with their SHA-256 checksum and erased with a "
    "report and a certificate; every action is recorded in a hash-chained, tamper-evident "
    "audit log."
)
UNKNOWN = "unknown"  # a node or site no longer known: the country cannot be told
CSV_COLUMNS = (
    "controller",
    "processor",
    "dataset",
    "owner_project",
    "versions",
    "purposes",
    "categories",
    "legal_bases",
    "special_conditions",
    "recipients",
    "countries_processed",
    "residency",
    "retention_until",
    "dpia_refs",
    "erasures",
    "security_measures",
)


@dataclass(frozen=True, slots=True)
class ProcessingRecord:
    controller: str
    processor: str
    dataset: str
    description: str
    owner_project: str | None
    versions: list[dict[str, Any]]  # {version, state, registered_at, erased_at}
    purposes: list[str]
    categories: list[str]  # classifications: public, internal, personal, special_category
    legal_bases: list[str]  # GDPR Art. 6(1)
    special_conditions: list[str]  # GDPR Art. 9(2)
    recipients: list[str]  # projects: the owner, then every grantee
    countries_processed: list[str]
    residency: list[str]
    retention_until: str | None  # the latest end of retention of a version still present
    dpia_refs: list[str]
    erasures: list[dict[str, Any]]  # {erasure, version, trigger, completed_at}
    security_measures: str


def processing_records(session: Session, *, controller: str | None) -> list[ProcessingRecord]:
    """Every dataset's record (of one controller's datasets, if given), by controller, name."""
    stmt = select(Dataset).order_by(Dataset.controller, Dataset.name)
    if controller is not None:
        stmt = stmt.where(Dataset.controller == controller)
    datasets = list(session.scalars(stmt))
    ids = [d.id for d in datasets]
    versions = _versions(session, ids)
    recipients = _recipients(session, datasets)
    countries = _countries(session, ids)
    erasures = _erasures(session, ids)
    return [
        _record(
            dataset,
            versions[dataset.id],
            recipients[dataset.id],
            countries[dataset.id],
            erasures[dataset.id],
        )
        for dataset in datasets
    ]


def _record(
    dataset: Dataset,
    versions: Sequence[DatasetVersion],
    recipients: list[str],
    countries: set[str],
    erasures: list[dict[str, Any]],
) -> ProcessingRecord:
    present = [v.retention_until for v in versions if v.state == "present"]
    return ProcessingRecord(
        controller=dataset.controller,
        processor=dataset.processor,
        dataset=dataset.name,
        description=dataset.description,
        owner_project=recipients[0] if dataset.owner_project_id else None,
        versions=[
            {
                "version": v.version,
                "state": v.state,
                "registered_at": iso(v.registered_at),
                "erased_at": iso(v.erased_at),
            }
            for v in versions
        ],
        purposes=_distinct(p for v in versions for p in v.purposes),
        categories=_distinct(v.classification for v in versions),
        legal_bases=_distinct(v.legal_basis for v in versions),
        special_conditions=_distinct(v.special_condition for v in versions),
        recipients=recipients,
        countries_processed=sorted(countries),
        residency=_distinct(v.residency for v in versions),
        retention_until=iso(max(present)) if present else None,
        dpia_refs=_distinct(v.dpia_ref for v in versions),
        erasures=erasures,
        security_measures=SECURITY_MEASURES,
    )


def _distinct(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _versions(session: Session, ids: list[int]) -> dict[int, list[DatasetVersion]]:
    found: dict[int, list[DatasetVersion]] = defaultdict(list)
    stmt = (
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id.in_(ids))
        .order_by(DatasetVersion.dataset_id, DatasetVersion.version)
    )
    for version in session.scalars(stmt):
        found[version.dataset_id].append(version)
    return found


def _recipients(session: Session, datasets: list[Dataset]) -> dict[int, list[str]]:
    """The owner project first, then every project ever granted the dataset, by name."""
    names = dict(session.execute(select(Project.id, Project.name)).all())
    grants = select(DatasetGrant.dataset_id, DatasetGrant.project_id).where(
        DatasetGrant.dataset_id.in_([d.id for d in datasets])
    )
    granted: dict[int, set[str]] = defaultdict(set)
    for dataset_id, project_id in session.execute(grants):
        granted[dataset_id].add(names[project_id])
    found: dict[int, list[str]] = {}
    for dataset in datasets:
        owner = [names[dataset.owner_project_id]] if dataset.owner_project_id else []
        found[dataset.id] = owner + sorted(granted[dataset.id] - set(owner))
    return found


def _countries(session: Session, ids: list[int]) -> dict[int, set[str]]:
    """Where jobs using each dataset were placed: node → site → country."""
    stmt = (
        select(JobDataset.dataset_id, Job.placement)
        .join(Job, Job.id == JobDataset.job_id)
        .where(JobDataset.dataset_id.in_(ids), Job.placement.is_not(None))
    )
    placed = list(session.execute(stmt))
    node_ids = {node for _, placement in placed for node in (placement or {})}
    sites = dict(session.execute(select(Node.id, Node.site).where(Node.id.in_(node_ids))).all())
    country_of = dict(session.execute(select(Site.name, Site.country)).all())
    found: dict[int, set[str]] = defaultdict(set)
    for dataset_id, placement in placed:
        for node in placement or {}:
            found[dataset_id].add(country_of.get(sites.get(node, ""), UNKNOWN))
    return found


def _erasures(session: Session, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    stmt = (
        select(Erasure, DatasetVersion.dataset_id, DatasetVersion.version)
        .join(DatasetVersion, DatasetVersion.id == Erasure.version_id)
        .where(DatasetVersion.dataset_id.in_(ids), Erasure.state == ErasureState.DONE.value)
        .order_by(Erasure.id)
    )
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for erasure, dataset_id, version in session.execute(stmt):
        found[dataset_id].append(
            {
                "erasure": erasure.id,
                "version": version,
                "trigger": erasure.trigger,
                "completed_at": iso(erasure.completed_at),
            }
        )
    return found


# ---- rendering -------------------------------------------------------------------------------


def records_json(
    records: Sequence[ProcessingRecord], *, controller: str | None, generated_at: float
) -> str:
    document = {
        "controller": controller,
        "generated_at": iso(generated_at),
        "security_measures": SECURITY_MEASURES,
        "records": [asdict(r) for r in records],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def records_csv(records: Sequence[ProcessingRecord]) -> str:
    """One row per record; lists joined with '; ', versions as '1 present', erasures as
    'v1 request 2026-…'."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        row = asdict(record)
        row["versions"] = [f"{v['version']} {v['state']}" for v in record.versions]
        row["erasures"] = [
            f"v{e['version']} {e['trigger']} {e['completed_at']}" for e in record.erasures
        ]
        writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)
