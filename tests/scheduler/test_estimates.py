"""Runtime estimates from the latest finished jobs: reading only the jobs that can still count
teaches exactly what recording every one, oldest first, would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aifactory.domain.resources import Resources
from aifactory.scheduler.estimates import RuntimeHistory, from_latest
from aifactory.scheduler.snapshot import PendingJob

USERS, PROJECTS, LIMITS = ["u1", "u2", "u3"], ["p1", "p2"], [600.0, 3600.0, 86400.0]
finished_jobs = st.lists(
    st.tuples(
        st.sampled_from(USERS),
        st.sampled_from(PROJECTS),
        st.sampled_from(LIMITS),
        st.floats(0, 90_000, allow_nan=False),
    ),
    max_size=60,
)


@given(finished_jobs, st.sampled_from([1, 2, 3]))
def test_the_latest_jobs_teach_what_all_of_them_would(
    oldest_first: list[tuple[str, str, float, float]], keep: int
) -> None:
    everything = RuntimeHistory(keep=keep)
    for row in oldest_first:
        everything.record(*row)
    latest = from_latest(reversed(oldest_first), keep=keep)
    assert latest.finished == everything.finished == len(oldest_first)
    for user in [*USERS, "new"]:
        for project in [*PROJECTS, "new"]:
            for limit in [*LIMITS, 1200.0, float("inf")]:
                job = PendingJob(1, project, 0.0, Resources(1, 1, 1), time_limit_s=limit, user=user)
                assert latest.runtime(job) == everything.runtime(job)
