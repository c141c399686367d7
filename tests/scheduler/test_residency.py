"""Data residency in placement: a job whose datasets must stay in some countries is placed only
on nodes there, by every policy, whatever the cluster (issue #5: "a job on an NL dataset never
lands on a non-NL node")."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aifactory.domain.datasets import EU_MEMBER_STATES
from aifactory.domain.resources import Resources
from aifactory.scheduler import PendingJob, RunningJob, Snapshot, Start, schedule
from aifactory.scheduler.policy import NAMED, SIM_ONLY
from aifactory.scheduler.snapshot import NodeView
from tests.scheduler.builders import a_job, a_node, snapshot

POLICIES = {**NAMED, **SIM_ONLY}
NL_ONLY = frozenset({"NL"})
COUNTRIES = ["NL", "DE", "BE", "US", None]  # None: a node whose site has no country set
RESIDENCIES = [None, NL_ONLY, EU_MEMBER_STATES]


def in_country(node: str, country: str | None) -> NodeView:
    return replace(a_node(node).build(), country=country)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_an_nl_job_waits_for_an_nl_node_while_a_de_node_is_free(policy: str) -> None:
    snap = snapshot(
        nodes=[in_country("de-1", "DE"), in_country("nl-1", "NL")],
        running=[RunningJob(9, "q", {"nl-1": Resources(8, 1, 1024)}, 0.0, 3600.0)],
        pending=[replace(a_job(1).gpus(4).build(), countries=NL_ONLY)],
    )
    assert schedule(snap, POLICIES[policy], 10.0) == []


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_an_eu_job_goes_to_an_eu_node(policy: str) -> None:
    snap = snapshot(
        nodes=[in_country("us-1", "US"), in_country("be-1", "BE")],
        pending=[replace(a_job(1).gpus(4).build(), countries=EU_MEMBER_STATES)],
    )
    (start,) = schedule(snap, POLICIES[policy], 10.0)
    assert isinstance(start, Start)
    assert set(start.placement) == {"be-1"}


@st.composite
def clusters(draw: st.DrawFn) -> Snapshot:
    nodes = [
        in_country(f"n{i}", draw(st.sampled_from(COUNTRIES)))
        for i in range(draw(st.integers(1, 6)))
    ]
    running = []
    for i, node in enumerate(nodes):
        gpus = draw(st.integers(0, 8))
        if gpus:
            running.append(
                RunningJob(
                    1000 + i,
                    draw(st.sampled_from(["p", "q"])),
                    {node.id: Resources(gpus, 1, 1024)},
                    started_at=0.0,
                    time_limit_s=draw(st.sampled_from([60.0, 600.0, 3600.0])),
                    preemptible=draw(st.booleans()),
                )
            )
    pending: list[PendingJob] = []
    for job_id in range(1, draw(st.integers(1, 8)) + 1):
        job = a_job(job_id, draw(st.sampled_from(["p", "q"])))
        job = job.gpus(draw(st.integers(0, 8))).nodes(draw(st.integers(1, 2)))
        countries = draw(st.sampled_from(RESIDENCIES))
        pending.append(replace(job.build(), countries=countries))
    return snapshot(nodes=nodes, running=running, pending=pending)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters(), st.sampled_from(sorted(POLICIES)))
def test_no_policy_places_a_job_outside_its_datas_countries(snap: Snapshot, policy: str) -> None:
    countries = {node.id: node.country for node in snap.nodes}
    jobs = {job.job_id: job for job in snap.pending}
    for decision in schedule(snap, POLICIES[policy], 100.0):
        if not isinstance(decision, Start):
            continue
        allowed = jobs[decision.job_id].countries
        if allowed is not None:
            assert all(countries[node] in allowed for node in decision.placement), decision
