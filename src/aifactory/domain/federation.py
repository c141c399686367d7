"""Federation with an upstream allocation portal: the award records it sends, the usage we return.

An upstream portal (a national or European one, e.g. Waldur-based like EuroHPC's or Puhuri)
decides who gets compute; the facility runs it. The portal sends *award records*; each becomes
one allocation here, keyed on the portal's award id, so sending a record again changes nothing
and sending it changed updates that allocation. The facility sends back *usage lines*: what each
award used per month, from the same usage records its invoices bill (docs/federation.md).

An award record has the same columns in JSON (a list of objects) and in CSV (a header row):
`COLUMNS`. Periods are ISO dates, `end` included: the allocation runs from `start` 00:00 UTC
to the day after `end` 00:00 UTC. The PI is named by a federated identity (OIDC issuer +
subject, e.g. MyAccessID's), the same pair a sign-in presents, so the PI's first sign-in finds
the user an import made for them.

Invariants: parsing is all or nothing — the first problem raises `RecordProblem` naming the
record (0-based, in file order) and the column; an award id appears once per file. Pure: no
I/O, no clock.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aifactory.domain.names import name_problem
from aifactory.domain.tenancy import OrgKind

COLUMNS = (
    "award_id",
    "project_id",
    "project_name",
    "organisation_name",
    "organisation_kind",
    "pi_issuer",
    "pi_subject",
    "pi_name",
    "pi_email",
    "gpu_hours",
    "gpu_model",
    "start",
    "end",
    "programme",
)
OPTIONAL = frozenset({"pi_name", "pi_email", "gpu_model"})
FORMATS = ("json", "csv")
MAX_RECORDS = 10_000
ID_LIMIT = 128  # an upstream id: a UUID fits with room to spare
IDENTITY_LIMIT = 255  # user_identities.issuer and .subject
TEXT_LIMIT = 200  # a PI's name, an email address
DAY_S = 86_400


class RecordProblem(ValueError):
    """Why a file cannot be imported: the first record at fault (None: the file as a whole)."""

    def __init__(self, index: int | None, column: str | None, reason: str) -> None:
        where = "the file" if index is None else f"record {index}"
        super().__init__(f"{where}: {column + ': ' if column else ''}{reason}")
        self.index = index
        self.column = column
        self.reason = reason

    @property
    def field(self) -> str:
        """Where the API says the fault is: `records[3].gpu_hours`, `records` or `content`."""
        if self.index is None:
            return "content"
        return f"records[{self.index}]" + (f".{self.column}" if self.column else "")


@dataclass(frozen=True, slots=True)
class FederatedIdentity:
    """A person as a federation names them: stable for life, whatever their name or email."""

    issuer: str
    subject: str
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class AwardRecord:
    index: int  # its place in the file, from 0
    award_id: str
    project_id: str  # the upstream project's id
    project_name: str  # the project's name here (a facility name)
    organisation_name: str
    organisation_kind: OrgKind
    pi: FederatedIdentity
    gpu_hours: float
    gpu_model: str | None
    valid_from: float  # UNIX seconds: `start` 00:00 UTC
    valid_to: float  # the day after `end`, 00:00 UTC
    programme: str


# ---- parsing -------------------------------------------------------------------------------


def parse_awards(text: str, fmt: str) -> list[AwardRecord]:
    """Every record of a JSON or CSV file, checked; RecordProblem at the first fault."""
    if fmt not in FORMATS:
        raise RecordProblem(None, None, f"format must be one of {', '.join(FORMATS)}")
    rows = _json_rows(text) if fmt == "json" else _csv_rows(text)
    records = [_record(index, row) for index, row in enumerate(rows)]
    _check_unique(records)
    return records


def _json_rows(text: str) -> list[Mapping[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordProblem(None, None, f"not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, list):
        raise RecordProblem(None, None, "must be a JSON list of award records")
    _check_count(len(data))
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise RecordProblem(index, None, "must be a JSON object")
    return data


def _csv_rows(text: str) -> list[Mapping[str, Any]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = reader.fieldnames or []
        missing = [c for c in COLUMNS if c not in header and c not in OPTIONAL]
        if missing:
            raise RecordProblem(None, None, f"the header lacks column(s): {', '.join(missing)}")
        rows = list(_csv_records(reader))
    except csv.Error as exc:
        raise RecordProblem(None, None, f"not CSV: {exc}") from None
    _check_count(len(rows))
    return rows


def _csv_records(reader: csv.DictReader[str]) -> Iterator[Mapping[str, Any]]:
    """The rows, a blank cell as a value left out; a row with too many cells is refused."""
    for index, row in enumerate(reader):
        if None in row:
            raise RecordProblem(index, None, f"has more cells than the header's {len(COLUMNS)}")
        yield {key: value for key, value in row.items() if value not in ("", None)}


def _check_count(count: int) -> None:
    if count == 0:
        raise RecordProblem(None, None, "holds no award records")
    if count > MAX_RECORDS:
        raise RecordProblem(None, None, f"holds {count} records; at most {MAX_RECORDS} a file")


def _check_unique(records: list[AwardRecord]) -> None:
    seen: dict[str, int] = {}
    for record in records:
        first = seen.setdefault(record.award_id, record.index)
        if first != record.index:
            raise RecordProblem(record.index, "award_id", f"repeats record {first}'s award id")


def _record(index: int, row: Mapping[str, Any]) -> AwardRecord:
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise RecordProblem(index, unknown[0], f"is not a column (columns: {', '.join(COLUMNS)})")
    cell = _Cells(index, row)
    start, end = cell.day("start"), cell.day("end")
    if end < start:
        raise RecordProblem(index, "end", f"{end} is before start {start}")
    return AwardRecord(
        index=index,
        award_id=cell.text("award_id", ID_LIMIT),
        project_id=cell.text("project_id", ID_LIMIT),
        project_name=cell.name("project_name"),
        organisation_name=cell.name("organisation_name"),
        organisation_kind=cell.kind("organisation_kind"),
        pi=FederatedIdentity(
            issuer=cell.text("pi_issuer", IDENTITY_LIMIT),
            subject=cell.text("pi_subject", IDENTITY_LIMIT),
            name=cell.maybe_text("pi_name", TEXT_LIMIT),
            email=cell.maybe_email("pi_email"),
        ),
        gpu_hours=cell.hours("gpu_hours"),
        gpu_model=cell.maybe_text("gpu_model", 64),
        valid_from=_midnight(start),
        valid_to=_midnight(end) + DAY_S,
        programme=cell.name("programme"),
    )


@dataclass(frozen=True, slots=True)
class _Cells:
    """One row's cells, each read by the rule of its column."""

    index: int
    row: Mapping[str, Any]

    def _fail(self, column: str, reason: str) -> RecordProblem:
        return RecordProblem(self.index, column, reason)

    def maybe_text(self, column: str, limit: int) -> str | None:
        value = self.row.get(column)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(column, "must be text")
        value = value.strip()
        if not value:
            return None
        if len(value) > limit or "\x00" in value or not value.isprintable():
            raise self._fail(column, f"must be 1–{limit} printable characters")
        return value

    def text(self, column: str, limit: int) -> str:
        value = self.maybe_text(column, limit)
        if value is None:
            raise self._fail(column, "is required")
        return value

    def name(self, column: str) -> str:
        value = self.text(column, 64)
        if problem := name_problem(value):
            raise self._fail(column, f"{value!r} {problem}")
        return value

    def kind(self, column: str) -> OrgKind:
        value = self.text(column, 32)
        try:
            return OrgKind(value)
        except ValueError:
            kinds = ", ".join(k.value for k in OrgKind)
            raise self._fail(column, f"{value!r} is not one of {kinds}") from None

    def maybe_email(self, column: str) -> str | None:
        value = self.maybe_text(column, TEXT_LIMIT)
        if value is not None and (value.count("@") != 1 or " " in value):
            raise self._fail(column, f"{value!r} is not an email address")
        return value

    def hours(self, column: str) -> float:
        value = self.row.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise self._fail(column, "is required")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self._fail(column, "must be a number of GPU-hours")
        try:
            hours = float(value)
        except ValueError:
            raise self._fail(column, f"{value!r} is not a number of GPU-hours") from None
        if not (math.isfinite(hours) and hours > 0):
            raise self._fail(column, "must be a number of GPU-hours above 0")
        return hours

    def day(self, column: str) -> date:
        value = self.text(column, 10)
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self._fail(column, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


# ---- what an import does with a record ----------------------------------------------------


class Outcome:
    """What importing one record did (names as they appear in reports and the audit log)."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REFUSED = "refused"
    ALL = (CREATED, UPDATED, UNCHANGED, REFUSED)


@dataclass(frozen=True, slots=True)
class Terms:
    """What an award gives, as the facility keeps it: whole GPU-seconds and a window."""

    gpu_s: int
    valid_from: float
    valid_to: float

    def changes(self, other: Terms) -> dict[str, tuple[float, float]]:
        """What differs from `other` (was, now) by name: empty when nothing does."""
        pairs = {
            "gpu_s": (self.gpu_s, other.gpu_s),
            "valid_from": (self.valid_from, other.valid_from),
            "valid_to": (self.valid_to, other.valid_to),
        }
        return {name: (was, now) for name, (was, now) in pairs.items() if was != now}


# ---- usage returned upstream ---------------------------------------------------------------


def months(start: float, end: float) -> Iterator[tuple[float, float]]:
    """[start, end) cut at each first of a month (UTC): the periods usage is reported in."""
    at = start
    while at < end:
        moment = datetime.fromtimestamp(at, UTC)
        first = datetime(moment.year, moment.month, 1, tzinfo=UTC)
        following = (first + timedelta(days=32)).replace(day=1).timestamp()
        yield at, min(following, end)
        at = min(following, end)


def month_of(at: float) -> str:
    """ "YYYY-MM" (UTC) of a moment."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m")
