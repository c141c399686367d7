"""The pure GDPR rules of datasets: lawful terms, grants, residency."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aifactory.domain.datasets import (
    EU_MEMBER_STATES,
    Classification,
    DatasetTerms,
    LegalBasis,
    Residency,
    SpecialCondition,
    allows,
    countries_allowed,
    grant_problem,
)

YEAR = 365 * 86400.0
PUBLIC = DatasetTerms(
    Classification.PUBLIC, None, None, None, (), Residency.ANY, retention_until=10 * YEAR
)
HEALTH = DatasetTerms(
    Classification.SPECIAL_CATEGORY,
    LegalBasis.PUBLIC_TASK,
    SpecialCondition.ARCHIVING_RESEARCH_STATISTICS,
    "DPIA-2026-004",
    ("clinical nlp research",),
    Residency.NL,
    retention_until=5 * YEAR,
)


def test_public_data_needs_no_basis_and_lawful_special_data_passes() -> None:
    assert PUBLIC.problems() == []
    assert HEALTH.problems() == []


def test_personal_data_without_a_basis_is_named() -> None:
    terms = replace(HEALTH, classification=Classification.PERSONAL, legal_basis=None)
    assert terms.problems() == [
        ("legal_basis", "personal data needs a legal basis (GDPR Art. 6(1))")
    ]


def test_special_categories_need_an_art9_condition_a_dpia_and_a_purpose() -> None:
    terms = replace(HEALTH, special_condition=None, dpia_ref=" ", purposes=())
    assert [field for field, _ in terms.problems()] == ["special_condition", "dpia_ref", "purposes"]


def test_grants_keep_to_purpose_and_retention() -> None:
    now = YEAR
    assert grant_problem(HEALTH, purpose="clinical nlp research", until=2 * YEAR, now=now) is None
    assert grant_problem(HEALTH, purpose="marketing", until=2 * YEAR, now=now) == (
        "purpose",
        "personal data may be used only for its stated purposes (clinical nlp research), "
        "not 'marketing'",
    )
    assert grant_problem(HEALTH, purpose="clinical nlp research", until=6 * YEAR, now=now) == (
        "until",
        "a grant cannot outlive the dataset's retention period",
    )
    assert grant_problem(HEALTH, purpose="x", until=now, now=now) == (
        "until",
        "a grant must end in the future",
    )
    assert grant_problem(PUBLIC, purpose="anything at all", until=2 * YEAR, now=now) is None
    assert grant_problem(PUBLIC, purpose="", until=2 * YEAR, now=now) == (
        "purpose",
        "a grant states its purpose",
    )


@pytest.mark.parametrize(
    ("residency", "country", "ok"),
    [
        (Residency.NL, "NL", True),
        (Residency.NL, "DE", False),
        (Residency.EU, "de", True),
        (Residency.EU, "CH", False),  # Switzerland: not a member state
        (Residency.EU, "NO", False),  # Norway: EEA, not EU
        (Residency.ANY, "US", True),
    ],
)
def test_residency_allows(residency: Residency, country: str, ok: bool) -> None:
    assert allows(residency, country) is ok


def test_the_eu_has_27_member_states() -> None:
    assert len(EU_MEMBER_STATES) == 27


@given(st.lists(st.sampled_from(list(Residency)), max_size=4), st.sampled_from(["NL", "DE", "US"]))
def test_a_job_may_run_where_every_dataset_allows(
    residencies: list[Residency], country: str
) -> None:
    allowed = countries_allowed(residencies)
    every = all(allows(r, country) for r in residencies)
    assert (allowed is None or country in allowed) == every
    assert (allowed is None) == all(r is Residency.ANY for r in residencies)
