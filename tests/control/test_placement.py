"""`DeviceBook`: turning a placement (counts per node) into named GPU ids and CPU slots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aifactory.control.placement import DeviceBook
from aifactory.domain.placement import placement_of, stored_placement
from aifactory.domain.resources import Resources

R = Resources
GPU_IDS = {"n1": ["g0", "g1", "g2", "g3"], "n2": ["h0", "h1"]}
CPUS = {"n1": 8, "n2": 4}


class Book(DeviceBook):
    """The book taking and handing out placements as they are stored (plain JSON), which is
    what these tests write and compare."""

    def __init__(
        self,
        gpu_ids: dict[str, list[str]],
        cpus: dict[str, int],
        active: list[dict[str, Any]],
    ) -> None:
        super().__init__(gpu_ids, cpus, [placement_of(a) for a in active])

    def assign(self, placement: Mapping[str, Resources]) -> dict[str, Any]:  # type: ignore[override]
        return stored_placement(super().assign(placement))


def book(*active: dict[str, Any]) -> Book:
    return Book(GPU_IDS, CPUS, list(active))


def held(node: str, gpu_ids: list[str], cpu_ids: list[int]) -> dict[str, Any]:
    return {
        node: {"gpus": len(gpu_ids), "cpus": len(cpu_ids), "gpu_ids": gpu_ids, "cpu_ids": cpu_ids}
    }


def test_assigns_the_first_free_devices_with_counts_and_memory() -> None:
    named = book().assign({"n1": R(2, 3, 4096)})
    assert named == {
        "n1": {
            "gpus": 2,
            "cpus": 3,
            "memory_mb": 4096,
            "gpu_ids": ["g0", "g1"],
            "cpu_ids": [0, 1, 2],
        }
    }


def test_skips_devices_active_jobs_hold() -> None:
    devices = book(held("n1", ["g0", "g2"], [0, 1, 5]))
    named = devices.assign({"n1": R(2, 3, 0)})
    assert named["n1"]["gpu_ids"] == ["g1", "g3"]
    assert named["n1"]["cpu_ids"] == [2, 3, 4]


def test_assignments_in_one_book_never_overlap() -> None:
    devices = book()
    first = devices.assign({"n1": R(2, 4, 0)})
    second = devices.assign({"n1": R(2, 4, 0)})
    assert first["n1"]["gpu_ids"] == ["g0", "g1"]
    assert second["n1"]["gpu_ids"] == ["g2", "g3"]
    assert first["n1"]["cpu_ids"] == [0, 1, 2, 3]
    assert second["n1"]["cpu_ids"] == [4, 5, 6, 7]


def test_multi_node_placement_names_devices_on_each_node() -> None:
    named = book().assign({"n1": R(1, 1, 10), "n2": R(2, 2, 20)})
    assert named["n1"]["gpu_ids"] == ["g0"]
    assert named["n2"]["gpu_ids"] == ["h0", "h1"]
    assert named["n2"]["cpu_ids"] == [0, 1]
    assert named["n2"]["memory_mb"] == 20


def test_zero_gpus_gets_no_gpu_ids() -> None:
    named = book().assign({"n2": R(0, 1, 512)})
    assert named["n2"]["gpu_ids"] == []
    assert named["n2"]["cpu_ids"] == [0]


def test_a_finished_jobs_devices_are_free_again_in_a_fresh_book() -> None:
    running_job = held("n2", ["h0", "h1"], [0, 1, 2, 3])
    with pytest.raises(RuntimeError):
        book(running_job).assign({"n2": R(1, 0, 0)})
    # The book is rebuilt from the active placements each time; without the job they are free.
    assert book().assign({"n2": R(1, 0, 0)})["n2"]["gpu_ids"] == ["h0"]


@pytest.mark.parametrize(
    ("active", "want"),
    [
        pytest.param([], {"n2": R(3, 0, 0)}, id="more-gpus-than-the-node-has"),
        pytest.param([], {"n2": R(0, 5, 0)}, id="more-cpus-than-the-node-has"),
        pytest.param([held("n1", ["g0", "g1", "g2"], [])], {"n1": R(2, 0, 0)}, id="gpus-held"),
        pytest.param([held("n1", [], list(range(7)))], {"n1": R(0, 2, 0)}, id="cpus-held"),
    ],
)
def test_raises_when_the_book_cannot_satisfy(
    active: list[dict[str, Any]], want: dict[str, Resources]
) -> None:
    devices = Book(GPU_IDS, CPUS, active)
    node = next(iter(want))
    with pytest.raises(RuntimeError, match=f"node {node} has no free devices"):
        devices.assign(want)


def test_a_failed_assignment_takes_nothing() -> None:
    devices = book()
    with pytest.raises(RuntimeError):
        # n1 could be served, n2 cannot: the whole placement fails and n1 stays free.
        devices.assign({"n1": R(4, 8, 0), "n2": R(3, 0, 0)})
    assert devices.assign({"n1": R(4, 8, 0)})["n1"]["gpu_ids"] == ["g0", "g1", "g2", "g3"]


def test_exactly_full_then_full() -> None:
    devices = book()
    devices.assign({"n2": R(2, 4, 0)})
    with pytest.raises(RuntimeError):
        devices.assign({"n2": R(1, 0, 0)})
    with pytest.raises(RuntimeError):
        devices.assign({"n2": R(0, 1, 0)})
    # Memory is not a device: the book does not count it.
    assert devices.assign({"n2": R(0, 0, 10**9)})["n2"]["gpu_ids"] == []


def test_active_placements_without_device_lists_hold_nothing() -> None:
    devices = book({"n1": {"gpus": 2, "cpus": 2, "memory_mb": 1}})
    assert devices.assign({"n1": R(4, 8, 0)})["n1"]["gpu_ids"] == ["g0", "g1", "g2", "g3"]


# ---- by property: many jobs, one book ---------------------------------------------------------

WANTS = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "n1": st.builds(R, st.integers(0, 4), st.integers(0, 8), st.just(0)),
            "n2": st.builds(R, st.integers(0, 2), st.integers(0, 4), st.just(0)),
        },
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(WANTS)
def test_devices_are_never_handed_out_twice(wants: list[dict[str, Resources]]) -> None:
    devices = book()
    taken: dict[str, tuple[set[str], set[int]]] = {n: (set(), set()) for n in GPU_IDS}
    for want in wants:
        gpus_left = {n: len(GPU_IDS[n]) - len(taken[n][0]) for n in GPU_IDS}
        cpus_left = {n: CPUS[n] - len(taken[n][1]) for n in GPU_IDS}
        fits = all(w.gpus <= gpus_left[n] and w.cpus <= cpus_left[n] for n, w in want.items())
        if not fits:
            with pytest.raises(RuntimeError):
                devices.assign(want)
            continue
        named = devices.assign(want)
        assert set(named) == set(want)
        for node, part in named.items():
            gpu_ids, cpu_ids = part["gpu_ids"], part["cpu_ids"]
            assert len(gpu_ids) == len(set(gpu_ids)) == want[node].gpus
            assert len(cpu_ids) == len(set(cpu_ids)) == want[node].cpus
            assert set(gpu_ids) <= set(GPU_IDS[node])
            assert all(0 <= c < CPUS[node] for c in cpu_ids)
            assert not set(gpu_ids) & taken[node][0]
            assert not set(cpu_ids) & taken[node][1]
            taken[node][0].update(gpu_ids)
            taken[node][1].update(cpu_ids)
    # A book rebuilt from what was handed out agrees on what is left.
    rebuilt = Book(
        GPU_IDS,
        CPUS,
        [{n: {"gpu_ids": sorted(g), "cpu_ids": sorted(c)} for n, (g, c) in taken.items()}],
    )
    for node in GPU_IDS:
        assert rebuilt.gpus_taken[node] == taken[node][0]
        assert rebuilt.cpus_taken[node] == taken[node][1]
