"""The free-capacity index finds exactly the placement the reference best-fit scan finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aifactory.domain.resources import Resources
from aifactory.scheduler import PendingJob
from aifactory.scheduler.placement import FreeIndex, place
from aifactory.scheduler.snapshot import NodeKind

rooms = st.dictionaries(
    st.sampled_from([f"n{i}" for i in range(12)]),
    st.builds(Resources, st.integers(0, 8), st.integers(0, 16), st.integers(0, 4)),
    min_size=1,
)
jobs = st.builds(
    lambda gpus, cpus, mem, nodes, model, one_block: PendingJob(
        1,
        "p",
        0.0,
        Resources(gpus, cpus, mem),
        nodes=nodes,
        gpu_model=model,
        one_block=one_block,
    ),
    st.integers(0, 8),
    st.integers(0, 16),
    st.integers(0, 4),
    st.integers(1, 4),
    st.sampled_from([None, "h100", "a100"]),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(rooms, jobs, st.data())
def test_index_placement_equals_the_reference_scan(
    free: dict[str, Resources], job: PendingJob, data: st.DataObject
) -> None:
    blocks = data.draw(st.sampled_from([(None,), ("b1", "b2"), ("b1", "b2", "b3", None)]))
    models = {
        n: NodeKind(
            data.draw(st.sampled_from(["h100", "a100"])), None, data.draw(st.sampled_from(blocks))
        )
        for n in free
    }
    excluded = frozenset(data.draw(st.lists(st.sampled_from(sorted(free)), max_size=3)))
    index = FreeIndex(dict(free))
    assert index.place(job, models, excluded) == place(job, free, models, excluded)


@settings(max_examples=200, deadline=None)
@given(rooms, jobs)
def test_could_fit_never_rejects_a_job_that_fits(
    free: dict[str, Resources], job: PendingJob
) -> None:
    models = dict.fromkeys(free, NodeKind("h100"))
    if place(job, free, models) is not None:
        assert FreeIndex(dict(free)).could_fit(job)


@settings(max_examples=200, deadline=None)
@given(rooms, jobs)
def test_take_then_give_restores_the_index(free: dict[str, Resources], job: PendingJob) -> None:
    index = FreeIndex(dict(free))
    placement = index.place(job, dict.fromkeys(free, NodeKind("h100")))
    if placement is None:
        return
    index.take(placement)
    index.give(placement)
    assert index.free == free
    assert {n for ids in index.buckets.values() for n in ids} == set(free)
