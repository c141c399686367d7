"""Invariants of the policies in the simulator, over small random traces (hypothesis).

- decisions never use the true runtime: two traces that differ only in the true durations of
  some jobs give `slurm` and `fairshare` the same decisions at every instant before the first
  of those jobs ends in either run; `oracle`, handed the true runtimes on purpose, does not
  (which shows the comparison can tell);
- no starvation: a whole-node job submitted among a steady stream of short 1-GPU jobs of
  another project starts within the starvation guard plus the stream's longest limit (and a
  little slack) under `fairshare`, and within the same bound under `easy` and `slurm`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace

from hypothesis import example, given, settings
from hypothesis import strategies as st

from aifactory.domain.resources import Resources
from aifactory.scheduler import NAMED, Decision, NodeView, Policy, Snapshot, Start, schedule
from aifactory.scheduler.policy import SIM_ONLY
from aifactory.sim.engine import SimResult, Simulator, cluster
from aifactory.sim.traces import TraceJob, nodes_for

NODES = cluster([8, 8])
Log = list[tuple[float, list[Decision]]]

# ---- decisions never use the true runtime ---------------------------------------------------

# gpus (16: a gang of two nodes), time limit (None: none), project, preemptible
JOB = st.sampled_from(
    list(itertools.product((1, 2, 4, 8, 16), (60.0, 300.0, 900.0, None), ("a", "b"), (False, True)))
)
DURATIONS = (5.0, 40.0, 120.0, 500.0, 2000.0)
QUOTAS = (None, {"a": 8}, {"a": 8, "b": 8})


@st.composite
def twin_traces(
    draw: st.DrawFn,
) -> tuple[list[TraceJob], list[TraceJob], frozenset[int], dict[str, int] | None]:
    """A trace, the same trace with other true durations for some jobs, those jobs' ids, and
    the projects' quotas."""
    asks = draw(
        st.lists(
            st.tuples(JOB, st.sampled_from(range(0, 300, 20)), st.sampled_from(DURATIONS)),
            min_size=2,
            max_size=9,
        )
    )
    jobs = [
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
    changed = draw(st.sets(st.sampled_from([job.job_id for job in jobs]), min_size=1))
    twin = [
        replace(job, duration=draw(st.sampled_from([d for d in DURATIONS if d != job.duration])))
        if job.job_id in changed
        else job
        for job in jobs
    ]
    return jobs, twin, frozenset(changed), draw(st.sampled_from(QUOTAS))


def _run(
    jobs: Sequence[TraceJob],
    policy: Policy,
    quotas: dict[str, int] | None = None,
    nodes: tuple[NodeView, ...] = NODES,
) -> tuple[Log, SimResult]:
    """The simulation, with every (instant, decisions) the policy gave."""
    log: Log = []

    def recording(snapshot: Snapshot, policy: Policy, now: float) -> list[Decision]:
        decisions = schedule(snapshot, policy, now)
        log.append((now, decisions))
        return decisions

    return log, Simulator(jobs, nodes, policy, recording, quotas=quotas).run()


def _until_first_end(
    jobs: Sequence[TraceJob],
    twin: Sequence[TraceJob],
    changed: frozenset[int],
    policy: Policy,
    quotas: dict[str, int] | None = None,
    nodes: tuple[NodeView, ...] = NODES,
) -> tuple[Log, Log]:
    """Both runs' decisions strictly before the first instant a changed job ends in either."""
    log, result = _run(jobs, policy, quotas, nodes)
    twin_log, twin_result = _run(twin, policy, quotas, nodes)
    ends = [f.end for r in (result, twin_result) for f in r.finished if f.job.job_id in changed]
    first_end = min(ends, default=math.inf)
    return (
        [entry for entry in log if entry[0] < first_end],
        [entry for entry in twin_log if entry[0] < first_end],
    )


@settings(max_examples=40, deadline=None)
@given(twin_traces())
def test_decisions_do_not_depend_on_true_runtimes(
    traces: tuple[list[TraceJob], list[TraceJob], frozenset[int], dict[str, int] | None],
) -> None:
    jobs, twin, changed, quotas = traces
    for name in ("slurm", "fairshare"):
        seen, twin_seen = _until_first_end(jobs, twin, changed, NAMED[name], quotas)
        assert seen == twin_seen, name


def test_oracle_decisions_do_depend_on_true_runtimes() -> None:
    """One 8-GPU node: job 1 holds half of it until 100, job 2 waits for all of it. Job 3
    (limit 200) fits beside job 1 now; only a policy that knows it really ends at 12, long
    before job 2 can start, backfills it — so its true duration changes the decision at 2."""
    jobs = [
        TraceJob(1, 0.0, 100.0, 4, time_limit=100.0),
        TraceJob(2, 1.0, 50.0, 8, time_limit=50.0),
        TraceJob(3, 2.0, 10.0, 4, time_limit=200.0),
    ]
    twin = [*jobs[:2], replace(jobs[2], duration=150.0)]
    one_node = cluster([8])
    oracle = SIM_ONLY["oracle"]
    seen, twin_seen = _until_first_end(jobs, twin, frozenset({3}), oracle, nodes=one_node)
    assert seen != twin_seen
    assert seen[2] == (2.0, [Start(3, {"n0000": Resources(4, 4, 1024)})])  # backfilled
    assert twin_seen[2] == (2.0, [])
    for name in ("slurm", "fairshare"):
        seen, twin_seen = _until_first_end(jobs, twin, frozenset({3}), NAMED[name], nodes=one_node)
        assert seen == twin_seen, name


# ---- no starvation --------------------------------------------------------------------------

STARVATION_S = 1800.0  # a shorter guard than the default day, to keep the streams short
BIG_AT = 1200.0  # the stream has filled both nodes by then
SLACK_S = 300.0
GUARDED = replace(
    NAMED["fairshare"],
    fairshare=replace(NAMED["fairshare"].fairshare, starvation_after_s=STARVATION_S),
)
# seconds between two 1-GPU jobs, their true durations (in turn), their limit
STREAMS = st.tuples(
    st.sampled_from((24.0, 30.0, 36.0)),
    st.sampled_from(((600.0,), (100.0, 600.0), (60.0, 1100.0), (30.0, 200.0, 1000.0, 700.0))),
    st.sampled_from((900.0, 1200.0)),
)


def _stream(gap: float, durations: tuple[float, ...], limit: float) -> list[TraceJob]:
    """Job 1 (8 GPUs, a whole node) among 1-GPU jobs of another project, one every `gap`
    seconds, from 0 until well past the time job 1 must have started."""
    big = TraceJob(1, BIG_AT, 1800.0, 8, project="big", user="big", time_limit=3600.0)
    until = BIG_AT + STARVATION_S + 4 * limit
    count = math.ceil(until / gap)
    crowd = [
        TraceJob(
            i + 2,
            i * gap,
            durations[i % len(durations)],
            1,
            project="crowd",
            user="crowd",
            time_limit=limit,
        )
        for i in range(count)
    ]
    return [big, *crowd]


def _assert_starts_in_time(policy: Policy, stream: tuple[float, tuple[float, ...], float]) -> None:
    gap, durations, limit = stream
    result = Simulator(_stream(gap, durations, limit), NODES, policy, schedule).run()
    assert result.unfinished == 0
    big = next(f for f in result.finished if f.job.job_id == 1)
    assert big.wait <= STARVATION_S + limit + SLACK_S, (policy.name, big.wait)


@settings(max_examples=6, deadline=None)
@example((30.0, (100.0, 600.0), 900.0))
@given(STREAMS)
def test_fairshare_starts_a_starving_whole_node_job_in_time(
    stream: tuple[float, tuple[float, ...], float],
) -> None:
    _assert_starts_in_time(GUARDED, stream)


@settings(max_examples=6, deadline=None)
@given(STREAMS)
def test_easy_and_slurm_start_a_whole_node_job_in_time(
    stream: tuple[float, tuple[float, ...], float],
) -> None:
    for name in ("easy", "slurm"):
        _assert_starts_in_time(NAMED[name], stream)
