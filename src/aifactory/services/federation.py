"""Award imports from an upstream allocation portal (domain.federation; docs/federation.md).

One file is one import. It is checked whole before anything is written: a record the format
refuses, naming a programme the facility lacks, or giving a grant no allocation could have
refuses the file (InvalidInput naming `records[i].<column>`) and nothing is imported. Each
checked record is then applied on its own savepoint, keyed on the upstream award id:

- *created*: a new award — its organisation and project are made if missing, its PI (a
  federated identity) is found in `user_identities` or made a user (no password) with that
  identity linked, so their first OIDC sign-in lands on that user; the PI owns the project;
  the allocation is opened as any other (services.allocations.open_allocation).
- *unchanged*: the award as last applied, sent again: nothing is written.
- *updated*: a changed amount posts the difference as an ADJUST ledger entry (the ledger is
  append-only), a changed period moves the allocation's window, a new PI is made an owner.
- *refused*, with the reason, writing nothing for that record: what the facility already holds
  contradicts it — the project is another organisation's or linked to another upstream
  project, the organisation is of another kind, the award moved project or programme, the
  window overlaps another allocation, or the new amount is below what the allocation has
  already used or reserved (an allocation never goes negative by a revision).

Every import that is not a dry run is stored (`federation_imports`: who, when, file name and
SHA-256, counts and each record's outcome) and audited (`federation.import`), as is each change
it makes. A dry run does all of it on a savepoint it rolls back: it reports, and keeps nothing.

Who may (FEDERATION_IMPORT): facility admins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.accounting import ledger
from aifactory.accounting.budget import raise_alerts
from aifactory.domain import federated_identity as identity
from aifactory.domain.federated_identity import Claims
from aifactory.domain.federation import (
    FORMATS,
    AwardRecord,
    FederatedIdentity,
    Outcome,
    RecordProblem,
    Terms,
    parse_awards,
)
from aifactory.domain.ledger import EntryKind
from aifactory.domain.money import MS_PER_S, gpu_seconds
from aifactory.domain.permissions import Action
from aifactory.domain.programmes import Window
from aifactory.domain.tenancy import FacilityRole, ProjectRole
from aifactory.errors import AifactoryError, InvalidInput, NotFound
from aifactory.governance import audit
from aifactory.services.allocations import (
    NO_ENTRIES,
    Grant,
    check_grant,
    open_allocation,
)
from aifactory.services.principal import Principal
from aifactory.services.programmes import hours_text, programme_by_name, time_text
from aifactory.services.tenancy import add_membership, create_organisation, create_project
from aifactory.store.models import (
    Allocation,
    FederationAward,
    FederationImport,
    Member,
    Organisation,
    Programme,
    Project,
    User,
    UserIdentity,
)

PROVIDER = "federation"  # user_identities.provider of an identity an award linked
SOURCE_LIMIT = 255
# check_grant's fields as the record's columns
GRANT_COLUMNS = {"gpu_hours": "gpu_hours", "valid_to": "end", "gpu_model": "gpu_model"}


class Refused(Exception):
    """The facility's state contradicts a record: it is refused, the others go on."""


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    index: int
    award_id: str
    outcome: str  # domain.federation.Outcome
    project: str
    allocation: str | None  # None: refused before it had one
    detail: str  # refused: why; updated: what changed; else empty


@dataclass(frozen=True, slots=True)
class ImportReport:
    id: int | None  # the stored import; None for a dry run
    actor: str
    at: float
    source: str
    sha256: str
    format: str
    dry_run: bool
    records: tuple[RecordOutcome, ...]

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.records if r.outcome == outcome)


def import_awards(
    session: Session,
    principal: Principal,
    *,
    content: str,
    fmt: str,
    source: str,
    dry_run: bool = False,
    now: float,
) -> ImportReport:
    """Import one file of award records (`fmt`: json or csv), all checked before any is applied."""
    principal.authorize(Action.FEDERATION_IMPORT)
    source = _source(source)
    records = _checked(session, content, fmt)
    sha256 = hashlib.sha256(content.encode()).hexdigest()
    trial = session.begin_nested()
    stored = FederationImport(
        actor=principal.name,
        at=now,
        source=source,
        sha256=sha256,
        format=fmt,
        created=0,
        updated=0,
        unchanged=0,
        refused=0,
        outcomes=[],
    )
    session.add(stored)
    session.flush()
    applier = _Applier(session, principal, stored, now)
    report = ImportReport(
        id=None if dry_run else stored.id,
        actor=principal.name,
        at=now,
        source=source,
        sha256=sha256,
        format=fmt,
        dry_run=dry_run,
        records=tuple(applier.apply(record, programme) for record, programme in records),
    )
    _record(session, principal, stored, report)
    if dry_run:
        trial.rollback()
    else:
        trial.commit()
    return report


def list_imports(session: Session, principal: Principal, *, limit: int = 100) -> list[ImportReport]:
    """The latest imports, newest first: the trail of what came from upstream, and from whom."""
    principal.authorize(Action.FEDERATION_IMPORT)
    stmt = select(FederationImport).order_by(FederationImport.id.desc()).limit(limit)
    return [
        ImportReport(
            id=row.id,
            actor=row.actor,
            at=row.at,
            source=row.source,
            sha256=row.sha256,
            format=row.format,
            dry_run=False,
            records=tuple(RecordOutcome(**outcome) for outcome in row.outcomes),
        )
        for row in session.scalars(stmt)
    ]


def _source(source: str) -> str:
    name = source.strip()
    if not name or len(name) > SOURCE_LIMIT or not name.isprintable():
        raise InvalidInput(f"must be 1–{SOURCE_LIMIT} printable characters", field="source")
    return name


def _checked(session: Session, content: str, fmt: str) -> list[tuple[AwardRecord, Programme]]:
    """The file's records with their programmes, or InvalidInput at the first that cannot be
    imported whatever the facility holds."""
    if fmt not in FORMATS:
        raise InvalidInput(f"must be one of {', '.join(FORMATS)}", field="format")
    try:
        records = parse_awards(content, fmt)
    except RecordProblem as problem:
        raise InvalidInput(str(problem), field=problem.field) from None
    checked = []
    for record in records:
        try:
            programme = programme_by_name(session, record.programme)
            check_grant(_grant(record))
        except (NotFound, InvalidInput) as exc:
            column = GRANT_COLUMNS.get(exc.field or "", "programme")
            fault = RecordProblem(record.index, column, exc.message)
            raise InvalidInput(str(fault), field=fault.field) from None
        checked.append((record, programme))
    return checked


def _grant(record: AwardRecord) -> Grant:
    return Grant(
        gpu_hours=record.gpu_hours,
        valid_from=record.valid_from,
        valid_to=record.valid_to,
        gpu_model=record.gpu_model,
    )


def _terms(record: AwardRecord) -> Terms:
    return Terms(gpu_seconds(record.gpu_hours), record.valid_from, record.valid_to)


def _record(
    session: Session, principal: Principal, stored: FederationImport, report: ImportReport
) -> None:
    counts = {outcome: report.count(outcome) for outcome in Outcome.ALL}
    stored.created = counts[Outcome.CREATED]
    stored.updated = counts[Outcome.UPDATED]
    stored.unchanged = counts[Outcome.UNCHANGED]
    stored.refused = counts[Outcome.REFUSED]
    stored.outcomes = [asdict(r) for r in report.records]
    audit.record(
        session,
        actor=principal.name,
        action="federation.import",
        object=f"federation_import:{stored.id}",
        at=report.at,
        source=principal.source,
        detail={
            "source": report.source,
            "sha256": report.sha256,
            "format": report.format,
            **counts,
        },
    )


class _Applier:
    """Applies one import's records, each on a savepoint of its own."""

    def __init__(
        self, session: Session, principal: Principal, stored: FederationImport, now: float
    ) -> None:
        self.session = session
        self.principal = principal
        self.stored = stored
        self.now = now

    def apply(self, record: AwardRecord, programme: Programme) -> RecordOutcome:
        try:
            with self.session.begin_nested():
                return self._apply(record, programme)
        except (Refused, AifactoryError) as exc:
            reason = exc.message if isinstance(exc, AifactoryError) else str(exc)
            return RecordOutcome(
                record.index, record.award_id, Outcome.REFUSED, record.project_name, None, reason
            )

    def _apply(self, record: AwardRecord, programme: Programme) -> RecordOutcome:
        stmt = select(FederationAward).where(FederationAward.award_id == record.award_id)
        known = self.session.scalars(stmt.with_for_update()).first()
        if known is None:
            return self._create(record, programme)
        return self._update(record, programme, known)

    # ---- a new award ----------------------------------------------------------------------

    def _create(self, record: AwardRecord, programme: Programme) -> RecordOutcome:
        pi = self._pi(record.pi)
        project = self._project(record, pi)
        self._owner(project, pi)
        allocation = open_allocation(
            self.session,
            project=project,
            programme=programme,
            grant=_grant(record),
            name=f"{project.name}-{programme.name}",
            proposal_id=None,
            actor=self.principal.name,
            reason=f"upstream award {record.award_id} ({self.stored.source})",
            now=self.now,
            source=self.principal.source,
        )
        terms = _terms(record)
        self.session.add(
            FederationAward(
                award_id=record.award_id,
                upstream_project_id=record.project_id,
                allocation_id=allocation.id,
                project_id=project.id,
                pi_user_id=pi.id,
                gpu_s=terms.gpu_s,
                valid_from=terms.valid_from,
                valid_to=terms.valid_to,
                import_id=self.stored.id,
                created_at=self.now,
                updated_at=self.now,
            )
        )
        self.session.flush()
        return RecordOutcome(
            record.index, record.award_id, Outcome.CREATED, project.name, allocation.name, ""
        )

    def _pi(self, pi: FederatedIdentity) -> User:
        """The user the identity signs in as; a new user (no password) with it linked if none."""
        stmt = select(User).join(UserIdentity, UserIdentity.user_id == User.id)
        found = self.session.scalars(
            stmt.where(UserIdentity.issuer == pi.issuer, UserIdentity.subject == pi.subject)
        ).first()
        if found is not None:
            return found
        person = Claims(pi.issuer, pi.subject, name=pi.name, email=pi.email)
        user = User(
            name=identity.user_name(person, self._user_name_taken),
            email=pi.email,
            facility_role=FacilityRole.USER.value,
            created_at=self.now,
        )
        self.session.add(user)
        self.session.flush()
        self.session.add(
            UserIdentity(
                user_id=user.id,
                issuer=pi.issuer,
                subject=pi.subject,
                provider=PROVIDER,
                created_at=self.now,
                last_sign_in_at=None,
            )
        )
        self._audit("user.create", f"user:{user.name}", None, {"facility_role": "user"})
        detail = {"issuer": pi.issuer, "subject": pi.subject, "provider": PROVIDER}
        self._audit("user.identity.link", f"user:{user.name}", None, detail)
        return user

    def _user_name_taken(self, name: str) -> bool:
        return self.session.scalars(select(User.id).where(User.name == name)).first() is not None

    def _project(self, record: AwardRecord, pi: User) -> Project:
        """The project linked to the upstream one, else the one of that name in the same
        organisation, else a new one (in a new organisation if need be) owned by the PI."""
        linked = self.session.scalars(
            select(Project)
            .join(FederationAward, FederationAward.project_id == Project.id)
            .where(FederationAward.upstream_project_id == record.project_id)
        ).first()
        if linked is not None:
            return linked
        organisation = self._organisation(record)
        named = self.session.scalars(
            select(Project).where(Project.name == record.project_name)
        ).first()
        if named is None:
            create_project(
                self.session,
                self.principal,
                name=record.project_name,
                organisation=organisation.name,
                owner=pi.name,
                now=self.now,
            )
            return self._by_name(record.project_name)
        if named.organisation_id != organisation.id:
            raise Refused(
                f"project {named.name} here belongs to another organisation than "
                f"{organisation.name}; rename the project upstream or here"
            )
        other = self.session.scalars(
            select(FederationAward.upstream_project_id).where(
                FederationAward.project_id == named.id
            )
        ).first()
        if other is not None:
            raise Refused(f"project {named.name} here is upstream project {other}'s")
        return named

    def _by_name(self, name: str) -> Project:
        return self.session.scalars(select(Project).where(Project.name == name)).one()

    def _organisation(self, record: AwardRecord) -> Organisation:
        stmt = select(Organisation).where(Organisation.name == record.organisation_name)
        found = self.session.scalars(stmt).first()
        if found is None:
            create_organisation(
                self.session,
                self.principal,
                name=record.organisation_name,
                kind=record.organisation_kind,
                now=self.now,
            )
            found = self.session.scalars(stmt).one()
        elif found.kind != record.organisation_kind.value:
            raise Refused(
                f"organisation {found.name} is a {found.kind} here, "
                f"not a {record.organisation_kind.value}"
            )
        return found

    def _owner(self, project: Project, pi: User) -> None:
        """Make the PI an owner of the project (a member already is promoted)."""
        member = self.session.get(Member, (project.id, pi.id))
        if member is not None and member.role == ProjectRole.OWNER.value:
            return
        was = None if member is None else member.role
        if member is None:
            add_membership(self.session, project, pi, ProjectRole.OWNER, now=self.now)
        else:
            member.role = ProjectRole.OWNER.value
        detail = {"project": project.name, "role": ProjectRole.OWNER.value, "was": was}
        action = "member.add" if was is None else "member.role"
        self._audit(action, f"user:{pi.name}", project.id, detail)

    # ---- an award seen before -----------------------------------------------------------

    def _update(
        self, record: AwardRecord, programme: Programme, known: FederationAward
    ) -> RecordOutcome:
        allocation = self.session.get(Allocation, known.allocation_id, with_for_update=True)
        assert allocation is not None  # a foreign key
        project = self.session.get(Project, known.project_id)
        assert project is not None
        self._same_place(record, programme, known, allocation)
        pi = self._pi(record.pi)
        was = Terms(known.gpu_s, known.valid_from, known.valid_to)
        changes = was.changes(_terms(record))
        new_pi = pi.id != known.pi_user_id
        if not changes and not new_pi:
            return RecordOutcome(
                record.index, record.award_id, Outcome.UNCHANGED, project.name, allocation.name, ""
            )
        said = []
        if "valid_from" in changes or "valid_to" in changes:
            said.append(self._move(allocation, project, programme, record))
        if "gpu_s" in changes:
            said.append(self._revise(allocation, known, _terms(record).gpu_s))
        if new_pi:
            self._owner(project, pi)
            said.append(f"PI now {pi.name}")
        known.gpu_s, known.valid_from, known.valid_to = (
            gpu_seconds(record.gpu_hours),
            record.valid_from,
            record.valid_to,
        )
        known.pi_user_id, known.import_id, known.updated_at = pi.id, self.stored.id, self.now
        detail = "; ".join(said)
        self._audit(
            "federation.award.update",
            f"allocation:{allocation.name}",
            project.id,
            {"award_id": record.award_id, "changes": detail},
        )
        return RecordOutcome(
            record.index, record.award_id, Outcome.UPDATED, project.name, allocation.name, detail
        )

    def _same_place(
        self,
        record: AwardRecord,
        programme: Programme,
        known: FederationAward,
        allocation: Allocation,
    ) -> None:
        if record.project_id != known.upstream_project_id:
            raise Refused(
                f"award {record.award_id} is upstream project {known.upstream_project_id}'s; "
                "an award does not move to another project"
            )
        if programme.id != allocation.programme_id:
            raise Refused(
                f"award {record.award_id} is allocation {allocation.name}, under another "
                f"programme than {programme.name}; an award does not change programme"
            )

    def _move(
        self, allocation: Allocation, project: Project, programme: Programme, record: AwardRecord
    ) -> str:
        window = Window(record.valid_from, record.valid_to)
        others = self.session.scalars(
            select(Allocation).where(
                Allocation.project_id == project.id,
                Allocation.programme_id == programme.id,
                Allocation.id != allocation.id,
            )
        )
        for other in others:
            if Window(other.valid_from, other.valid_to).overlaps(window):
                raise Refused(
                    f"the new period overlaps allocation {other.name} of {project.name} under "
                    f"{programme.name} ({time_text(other.valid_from)} to "
                    f"{time_text(other.valid_to)})"
                )
        said = (
            f"period {time_text(allocation.valid_from)}–{time_text(allocation.valid_to)} → "
            f"{time_text(record.valid_from)}–{time_text(record.valid_to)}"
        )
        allocation.valid_from, allocation.valid_to = record.valid_from, record.valid_to
        return said

    def _revise(self, allocation: Allocation, known: FederationAward, gpu_s: int) -> str:
        """Post the difference of the amounts; refused where use would exceed the new one."""
        delta_ms = (gpu_s - known.gpu_s) * MS_PER_S
        balance = ledger.balances(self.session, [allocation.id]).get(allocation.id, NO_ENTRIES)
        if balance.left_ms + delta_ms < 0:
            raise Refused(
                f"allocation {allocation.name} has used or reserved "
                f"{hours_text(balance.used_ms / MS_PER_S)} GPU-h; lowering the award from "
                f"{hours_text(known.gpu_s)} to {hours_text(gpu_s)} GPU-h would leave it "
                "negative"
            )
        said = f"GPU-hours {hours_text(known.gpu_s)} → {hours_text(gpu_s)}"
        ledger.append(
            self.session,
            allocation_id=allocation.id,
            kind=EntryKind.ADJUST,
            gpu_ms=delta_ms,
            key=f"federation:{known.id}:{self.stored.id}",
            at=self.now,
            actor=self.principal.name,
            reason=f"upstream award {known.award_id} revised: {said}",
        )
        self.session.flush()
        raise_alerts(self.session, allocation.id, now=self.now)
        return said

    def _audit(
        self, action: str, obj: str, project_id: int | None, detail: Mapping[str, object]
    ) -> None:
        audit.record(
            self.session,
            actor=self.principal.name,
            action=action,
            object=obj,
            at=self.now,
            source=self.principal.source,
            project_id=project_id,
            detail={**detail, "federation_import": self.stored.id},
        )
