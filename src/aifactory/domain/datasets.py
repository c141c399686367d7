"""Datasets under the GDPR: classification, legal basis, residency and grants — the pure rules.

Vocabulary (DESIGN.md §3): a *dataset* is registered data with a classification, a legal basis
(GDPR Art. 6(1); for special categories also an Art. 9(2) condition), purposes, a residency
(`NL`, `EU`, `ANY`) and a retention period. A *grant* lets a project use a dataset for a stated
purpose until a date.

Invariants the checks below keep:
- personal data always has an Art. 6 basis; special-category data also an Art. 9 condition and
  a DPIA reference (Art. 35);
- a grant of personal data names one of the dataset's purposes (purpose limitation, Art. 5(1)(b))
  and never outlives the dataset's retention;
- a job may run only in a country every one of its datasets' residencies allows.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

Problem = tuple[str, str]  # (field, reason)


class Classification(enum.StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    PERSONAL = "personal"
    SPECIAL_CATEGORY = "special_category"

    @property
    def is_personal(self) -> bool:
        return self in (Classification.PERSONAL, Classification.SPECIAL_CATEGORY)


class LegalBasis(enum.StrEnum):
    """GDPR Art. 6(1) (a)–(f)."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"


class SpecialCondition(enum.StrEnum):
    """GDPR Art. 9(2) (a)–(j): what lifts the ban on processing special categories."""

    EXPLICIT_CONSENT = "explicit_consent"
    EMPLOYMENT_SOCIAL_SECURITY = "employment_social_security"
    VITAL_INTERESTS = "vital_interests"
    NOT_FOR_PROFIT_BODY = "not_for_profit_body"
    MADE_PUBLIC_BY_SUBJECT = "made_public_by_subject"
    LEGAL_CLAIMS = "legal_claims"
    SUBSTANTIAL_PUBLIC_INTEREST = "substantial_public_interest"
    HEALTH_OR_SOCIAL_CARE = "health_or_social_care"
    PUBLIC_HEALTH = "public_health"
    ARCHIVING_RESEARCH_STATISTICS = "archiving_research_statistics"


class VersionState(enum.StrEnum):
    """A version is `present` until an erasure starts; `erasing` is never readable, so a crash
    mid-erasure cannot leave half-erased data looking present."""

    PRESENT = "present"
    ERASING = "erasing"
    ERASED = "erased"


class ErasureTrigger(enum.StrEnum):
    REQUEST = "request"  # a data subject's or controller's request (GDPR Art. 17)
    RETENTION = "retention"  # the retention period ran out
    CLOSURE = "closure"  # the owning project was closed


ENV_PREFIX = "AIFACTORY_DATASET_"


def env_name(dataset: str) -> str:
    """The variable a job finds the dataset's path in: nl-books → AIFACTORY_DATASET_NL_BOOKS."""
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", dataset.upper())


class Residency(enum.StrEnum):
    NL = "NL"
    EU = "EU"
    ANY = "ANY"


# The 27 EU member states (ISO 3166-1 alpha-2), as of 2026.
EU_MEMBER_STATES = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()  # noqa: SIM905
)


def allows(residency: Residency, country: str) -> bool:
    """Whether data with this residency may be processed in `country` (ISO alpha-2)."""
    if residency is Residency.ANY:
        return True
    if residency is Residency.EU:
        return country.upper() in EU_MEMBER_STATES
    return country.upper() == residency.value


def countries_allowed(residencies: Iterable[Residency]) -> frozenset[str] | None:
    """Where a job reading datasets with these residencies may run: None means anywhere."""
    allowed: frozenset[str] | None = None
    for residency in residencies:
        if residency is Residency.ANY:
            continue
        here = EU_MEMBER_STATES if residency is Residency.EU else frozenset({residency.value})
        allowed = here if allowed is None else allowed & here
    return allowed


@dataclass(frozen=True, slots=True)
class DatasetTerms:
    """What a dataset version declares about its lawful use."""

    classification: Classification
    legal_basis: LegalBasis | None
    special_condition: SpecialCondition | None
    dpia_ref: str | None
    purposes: tuple[str, ...]
    residency: Residency
    retention_until: float  # UNIX seconds: the data must be erased by then

    def problems(self) -> list[Problem]:
        """Everything that keeps these terms from being lawful, each with its field."""
        found: list[Problem] = []
        personal = self.classification.is_personal
        if personal and self.legal_basis is None:
            found.append(("legal_basis", "personal data needs a legal basis (GDPR Art. 6(1))"))
        if self.classification is Classification.SPECIAL_CATEGORY:
            if self.special_condition is None:
                found.append(
                    (
                        "special_condition",
                        "special-category data needs an Art. 9(2) condition",
                    )
                )
            if not (self.dpia_ref or "").strip():
                found.append(("dpia_ref", "special-category data needs a DPIA reference"))
        if personal and not any(p.strip() for p in self.purposes):
            found.append(("purposes", "personal data needs at least one stated purpose"))
        return found


def grant_problem(terms: DatasetTerms, *, purpose: str, until: float, now: float) -> Problem | None:
    """Why a project may not be granted the dataset for `purpose` until `until`, or None."""
    if not purpose.strip():
        return ("purpose", "a grant states its purpose")
    if until <= now:
        return ("until", "a grant must end in the future")
    if until > terms.retention_until:
        return ("until", "a grant cannot outlive the dataset's retention period")
    if terms.classification.is_personal and purpose not in terms.purposes:
        listed = ", ".join(terms.purposes)
        return (
            "purpose",
            f"personal data may be used only for its stated purposes ({listed}), not {purpose!r}",
        )
    return None


DATA_HOLD = "data: "  # how a job held for its data says so


@dataclass(frozen=True, slots=True)
class DatasetRead:
    """One declared dataset version of a waiting job, with what decides whether its project
    may read it now: the version's state, an erasure recorded against it, and whether the
    project owns the dataset or holds a grant valid now."""

    project: str
    dataset: str
    version: int
    version_state: VersionState
    erasure_due: bool
    readable: bool


def read_refusal(use: DatasetRead) -> str | None:
    """Why the job may not read this dataset now (None: it may). The one rule, applied when a
    round decides holds and again when an admission commits."""
    if use.version_state is not VersionState.PRESENT:
        return f"dataset {use.dataset} version {use.version} is {use.version_state.value}"
    if use.erasure_due:
        return f"dataset {use.dataset} version {use.version} is to be erased"
    if use.readable:
        return None
    return (
        f"project {use.project} has no valid grant for dataset {use.dataset} "
        "(its owner grants use: aifactory datasets grant)"
    )
