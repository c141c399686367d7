"""Award records from an upstream portal: JSON and CSV read alike, every fault named by record
and column, periods inclusive of their end date, usage cut into months."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from aifactory.domain.federation import (
    COLUMNS,
    FederatedIdentity,
    RecordProblem,
    Terms,
    month_of,
    months,
    parse_awards,
)
from aifactory.domain.tenancy import OrgKind

RECORD: dict[str, Any] = {
    "award_id": "6f1c0d2e-0b7a-4c55-9a43-2f0e8d1c9b10",
    "project_id": "a3e5b9c0-1111-4e2b-8f00-3c3c3c3c3c3c",
    "project_name": "protein-folding",
    "organisation_name": "uva",
    "organisation_kind": "university",
    "pi_issuer": "https://proxy.myaccessid.org/",
    "pi_subject": "0123abcd@myaccessid.org",
    "pi_name": "Ada Lovelace",
    "pi_email": "ada.lovelace@uva.nl",
    "gpu_hours": 5000,
    "gpu_model": "h100",
    "start": "2026-01-01",
    "end": "2026-06-30",
    "programme": "research",
}


def at(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def as_csv(*rows: dict[str, Any]) -> str:
    lines = [",".join(COLUMNS)]
    lines += [",".join(str(row.get(c, "")) for c in COLUMNS) for row in rows]
    return "\n".join(lines) + "\n"


def test_json_and_csv_give_the_same_record() -> None:
    from_json = parse_awards(json.dumps([RECORD]), "json")
    from_csv = parse_awards(as_csv(RECORD), "csv")

    assert from_json == from_csv
    (record,) = from_json
    assert record.organisation_kind is OrgKind.UNIVERSITY
    assert record.pi == FederatedIdentity(
        "https://proxy.myaccessid.org/",
        "0123abcd@myaccessid.org",
        "Ada Lovelace",
        RECORD["pi_email"],
    )
    assert (record.gpu_hours, record.gpu_model) == (5000.0, "h100")
    assert (record.valid_from, record.valid_to) == (at("2026-01-01"), at("2026-07-01"))


def test_optional_columns_may_be_left_out_or_blank() -> None:
    bare = {k: v for k, v in RECORD.items() if k not in ("pi_name", "pi_email", "gpu_model")}

    (from_json,) = parse_awards(json.dumps([bare]), "json")
    (from_csv,) = parse_awards(as_csv(bare), "csv")

    assert from_json == from_csv
    assert (from_json.gpu_model, from_json.pi.email, from_json.pi.name) == (None, None, None)


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"gpu_hours": -1}, "records[1].gpu_hours", "above 0"),
        ({"gpu_hours": "lots"}, "records[1].gpu_hours", "not a number"),
        ({"award_id": ""}, "records[1].award_id", "required"),
        ({"project_name": "protein folding"}, "records[1].project_name", "ASCII letters"),
        ({"organisation_kind": "charity"}, "records[1].organisation_kind", "not one of"),
        ({"pi_email": "ada"}, "records[1].pi_email", "not an email"),
        ({"start": "2026-13-01"}, "records[1].start", "not a date"),
        ({"end": "2025-12-31"}, "records[1].end", "before start"),
        ({"colour": "blue"}, "records[1].colour", "not a column"),
    ],
)
def test_a_bad_record_is_named_by_index_and_column(
    change: dict[str, Any], field: str, reason: str
) -> None:
    good = {**RECORD, "award_id": "first"}
    with pytest.raises(RecordProblem) as refused:
        parse_awards(json.dumps([good, {**RECORD, **change}]), "json")

    assert refused.value.field == field
    assert reason in str(refused.value)
    assert str(refused.value).startswith("record 1: ")


def test_an_award_twice_in_one_file_is_refused_at_the_second() -> None:
    with pytest.raises(RecordProblem) as refused:
        parse_awards(json.dumps([RECORD, RECORD]), "json")

    assert refused.value.field == "records[1].award_id"


@pytest.mark.parametrize(
    ("text", "fmt", "reason"),
    [
        ("{", "json", "not JSON"),
        ('{"award_id": "x"}', "json", "a JSON list"),
        ("[]", "json", "no award records"),
        ("award_id,project_id\nx,y\n", "csv", "lacks column(s): project_name"),
        (as_csv(RECORD).rstrip("\n") + ",extra\n", "csv", "more cells"),
    ],
)
def test_a_file_that_is_no_list_of_records_is_refused(text: str, fmt: str, reason: str) -> None:
    with pytest.raises(RecordProblem) as refused:
        parse_awards(text, fmt)

    assert reason in str(refused.value)


def test_terms_name_what_changed() -> None:
    was = Terms(3600, 0.0, 10.0)

    assert was.changes(was) == {}
    assert was.changes(Terms(7200, 0.0, 20.0)) == {"gpu_s": (3600, 7200), "valid_to": (10.0, 20.0)}


def test_months_cut_a_period_at_each_first_of_the_month() -> None:
    cut = list(months(at("2026-01-15"), at("2026-03-10")))

    assert cut == [
        (at("2026-01-15"), at("2026-02-01")),
        (at("2026-02-01"), at("2026-03-01")),
        (at("2026-03-01"), at("2026-03-10")),
    ]
    assert [month_of(start) for start, _ in cut] == ["2026-01", "2026-02", "2026-03"]
    assert list(months(at("2026-12-01"), at("2027-01-01"))) == [
        (at("2026-12-01"), at("2027-01-01"))
    ]
