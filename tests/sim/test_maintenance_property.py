"""Maintenance windows through the simulator (hypothesis): under every policy, no job starts on
a node whose window it would run into by its time limit, and every job still runs (work held
back by a window starts once it is over)."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from aifactory.scheduler import NAMED, Decision, Policy, Snapshot, Start, schedule
from aifactory.scheduler.maintenance import Window
from aifactory.scheduler.policy import SIM_ONLY
from aifactory.sim.engine import Simulator, cluster
from aifactory.sim.traces import TraceJob, nodes_for

NODES = cluster([8, 8, 8])
NODE_IDS = [n.id for n in NODES]
POLICIES = [*NAMED.values(), *SIM_ONLY.values()]

# gpus (16: a gang of two nodes), time limit, project, preemptible
JOB = st.sampled_from(
    list(itertools.product((1, 4, 8, 16), (60.0, 600.0, 3600.0), ("a", "b"), (False, True)))
)
DURATIONS = (10.0, 300.0, 3000.0)


@st.composite
def windows(draw: st.DrawFn) -> list[Window]:
    found = []
    for window_id in range(1, draw(st.integers(1, 3)) + 1):
        nodes = draw(st.sets(st.sampled_from(NODE_IDS), min_size=1, max_size=3))
        begins = float(draw(st.sampled_from(range(0, 4000, 100))))
        length = float(draw(st.sampled_from((60, 600, 2400))))
        found.append(Window(frozenset(nodes), begins, begins + length, "test", window_id))
    return found


@st.composite
def traces(draw: st.DrawFn) -> list[TraceJob]:
    asks = draw(
        st.lists(
            st.tuples(JOB, st.sampled_from(range(0, 3000, 50)), st.sampled_from(DURATIONS)),
            min_size=1,
            max_size=12,
        )
    )
    return [
        TraceJob(
            job_id,
            float(submit),
            duration,
            gpus,
            nodes_for(gpus),
            project,
            user=f"{project}-user",
            time_limit=limit,
            preemptible=preemptible,
        )
        for job_id, ((gpus, limit, project, preemptible), submit, duration) in enumerate(
            asks, start=1
        )
    ]


@settings(max_examples=60, deadline=None)
@given(
    jobs=traces(),
    maintenance=windows(),
    policy=st.sampled_from(POLICIES),
    quotas=st.sampled_from((None, {"a": 8})),
)
def test_no_job_runs_into_a_window(
    jobs: list[TraceJob], maintenance: list[Window], policy: Policy, quotas: dict[str, int] | None
) -> None:
    starts: list[tuple[float, Start]] = []

    def recording(snapshot: Snapshot, chosen: Policy, now: float) -> list[Decision]:
        decisions = schedule(snapshot, chosen, now)
        starts.extend((now, d) for d in decisions if isinstance(d, Start))
        return decisions

    result = Simulator(
        jobs, NODES, policy, recording, sample_s=1e9, quotas=quotas, maintenance=maintenance
    ).run()

    limits = {job.job_id: job.time_limit or math.inf for job in jobs}
    for now, start in starts:
        for window in maintenance:
            if window.nodes & set(start.placement):
                assert not window.clashes(now, limits[start.job_id]), (now, start, window)
    # Nothing is stranded: each job fits the cluster, and windows end.
    assert result.unfinished == 0
    assert {f.job.job_id for f in result.finished} == {job.job_id for job in jobs}
