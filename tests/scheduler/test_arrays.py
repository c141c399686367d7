"""An array's running limit holds round after round, whatever ends when (a small simulation
of rounds over `decide`, the function the control loop runs), and every task runs in the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from aifactory.scheduler import Policy, Start
from aifactory.scheduler.snapshot import PendingJob, RunningJob
from aifactory.scheduler.verdict import decide
from tests.scheduler.builders import a_job, a_node, snapshot

arrays = st.lists(
    st.tuples(st.integers(1, 12), st.one_of(st.none(), st.integers(1, 4)), st.integers(0, 2)),
    min_size=1,
    max_size=4,
)


def tasks(specs: list[tuple[int, int | None, int]]) -> list[PendingJob]:
    """Each spec: (tasks, limit, GPUs each); an array's id is its first task's job id."""
    found, next_id = [], 1
    for count, limit, gpus in specs:
        first = next_id
        for _ in range(count):
            job = a_job(next_id, f"p{first}").gpus(gpus).limit(600).build()
            found.append(replace(job, array_id=first, array_throttle=limit))
            next_id += 1
    return found


@settings(max_examples=60, deadline=None)
@given(arrays, st.randoms(use_true_random=False))
def test_never_more_tasks_running_than_the_limit_and_all_of_them_run(
    specs: list[tuple[int, int | None, int]], rng: object
) -> None:
    waiting = {job.job_id: job for job in tasks(specs)}
    limits = {job.array_id: job.array_throttle for job in waiting.values()}
    running: dict[int, RunningJob] = {}
    for now in range(0, 10_000, 10):
        view = snapshot([a_node("n1"), a_node("n2")], list(running.values()), waiting.values())
        found = decide(view, Policy(), float(now))
        for decision in found.decisions:
            assert isinstance(decision, Start)
            job = waiting.pop(decision.job_id)
            running[job.job_id] = RunningJob(
                job.job_id, job.project, decision.placement, now, 600, array_id=job.array_id
            )
        per_array = Counter(r.array_id for r in running.values())
        for array_id, count in per_array.items():
            limit = limits[array_id]
            assert limit is None or count <= limit
        for job_id in [i for i in running if rng.random() < 0.3]:  # type: ignore[attr-defined]
            del running[job_id]
        if not waiting and not running:
            return
    raise AssertionError(f"tasks left waiting: {sorted(waiting)}")


def test_a_task_kept_back_by_its_array_says_so() -> None:
    jobs = tasks([(3, 1, 1)])
    found = decide(snapshot([a_node("n1")], [], jobs), Policy(), 0.0)
    assert [d.job_id for d in found.decisions] == [1]
    assert found.verdicts is not None
    assert found.verdicts[2].reason == (
        "array 1 runs at most 1 of its tasks at once (%1): this one starts when one of them ends"
    )
