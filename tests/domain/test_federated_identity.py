"""Claims in, a provisioning plan out: user names, home organisations, entitlement grants."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from aifactory.domain.federated_identity import (
    Claims,
    EntitlementRule,
    Grant,
    grants,
    home_organisation,
    personal_project,
    user_name,
)
from aifactory.domain.names import NAME
from aifactory.domain.tenancy import OrgKind, ProjectRole

SURF = EntitlementRule(
    re.compile(r"urn:mace:surf\.nl:aifactory:(?P<project>[^:]+):(?P<role>owner|member|viewer)"),
    projects=frozenset({"dutch-llm", "speech"}),
    prefix="surf-",
)
LAB = EntitlementRule(re.compile(r"urn:mace:uva\.nl:group:nlp-lab"), "nlp", ProjectRole.MEMBER)


def claims(**given: object) -> Claims:
    return Claims(issuer="https://idp.example", subject="s-1", **given)  # type: ignore[arg-type]


def test_entitlements_grant_the_roles_their_rules_name() -> None:
    found = grants(
        [
            "urn:mace:surf.nl:aifactory:dutch-llm:member",
            "urn:mace:uva.nl:group:nlp-lab",
            "urn:mace:surf.nl:aifactory:speech:viewer",
            "urn:mace:surf.nl:aifactory:speech:bogus-role",
            "urn:mace:other:aifactory:dutch-llm:owner",
        ],
        [SURF, LAB],
    )
    assert found == (
        Grant("dutch-llm", ProjectRole.MEMBER),
        Grant("nlp", ProjectRole.MEMBER),
        Grant("speech", ProjectRole.VIEWER),
    )


def test_the_highest_role_wins_whatever_the_order() -> None:
    held = [
        "urn:mace:surf.nl:aifactory:dutch-llm:viewer",
        "urn:mace:surf.nl:aifactory:dutch-llm:owner",
        "urn:mace:surf.nl:aifactory:dutch-llm:member",
    ]
    assert grants(held, [SURF]) == (Grant("dutch-llm", ProjectRole.OWNER),)
    assert grants(reversed(held), [SURF]) == (Grant("dutch-llm", ProjectRole.OWNER),)


def test_a_rule_grants_only_the_projects_the_operator_let_it() -> None:
    reach = [
        "urn:mace:surf.nl:aifactory:surf-speech:member",  # the prefix
        "urn:mace:surf.nl:aifactory:anna-pg:owner",  # someone's personal project: not listed
        "urn:mace:surf.nl:aifactory:admin-project:owner",
    ]
    assert grants(reach, [SURF]) == (Grant("surf-speech", ProjectRole.MEMBER),)


def test_a_rule_matches_the_whole_entitlement_and_a_project_must_be_a_name() -> None:
    assert grants(["xurn:mace:uva.nl:group:nlp-lab"], [LAB]) == ()
    assert grants(["urn:mace:uva.nl:group:nlp-lab:extra"], [LAB]) == ()
    assert grants(["urn:mace:surf.nl:aifactory:-bad:member"], [SURF]) == ()


@given(st.lists(st.text(max_size=80), max_size=8))
def test_grants_name_valid_projects_once_each(entitlements: list[str]) -> None:
    found = grants(entitlements, [SURF, LAB])
    projects = [g.project for g in found]
    assert len(projects) == len(set(projects))
    assert all(NAME.fullmatch(p) for p in projects)


def test_the_home_organisation_is_the_domain_with_its_configured_kind() -> None:
    kinds = {"uva.nl": OrgKind.UNIVERSITY, "tno.nl": OrgKind.RESEARCH_INSTITUTE}
    assert home_organisation(claims(home_organisation="UvA.nl"), kinds) == (
        "uva.nl",
        OrgKind.UNIVERSITY,
    )
    # a domain the provider is not trusted for is no home, whatever the provider says
    assert home_organisation(claims(home_organisation="startup.io"), kinds) is None
    for bad in (None, "", "not a domain", "uva", "../etc", "a" * 80 + ".nl"):
        assert (
            home_organisation(claims(home_organisation=bad), kinds | {"uva": OrgKind.SME}) is None
        )


def test_user_names_come_from_what_the_person_is_called_and_are_unique() -> None:
    taken = {"jdevries", "jdevries-2"}
    assert user_name(claims(preferred_username="JdeVries"), taken.__contains__) == "jdevries-3"
    assert user_name(claims(email="jörg.müller@uva.nl"), taken.__contains__) == "jorg.muller"
    assert user_name(claims(name="Zoë de Vries"), taken.__contains__) == "zoe-de-vries"
    assert user_name(claims(email="Ada.Lovelace+hpc@uva.nl"), set().__contains__) == (
        "ada.lovelace-hpc"
    )
    assert user_name(claims(), taken.__contains__) == "s-1"
    assert user_name(claims(preferred_username="日本"), taken.__contains__) == "s-1"


@given(
    st.text(max_size=100),
    st.text(max_size=100),
    st.sets(st.text(min_size=1, max_size=70), max_size=5),
)
def test_a_user_name_is_always_a_valid_free_name(
    username: str, email: str, taken: set[str]
) -> None:
    name = user_name(
        Claims("https://idp", "sub", preferred_username=username, email=email),
        taken.__contains__,
    )
    assert NAME.fullmatch(name)
    assert name not in taken
    assert NAME.fullmatch(personal_project(name))
