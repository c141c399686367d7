"""The typed placement reads back what was stored, and stores what it read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aifactory.domain.placement import NodeShare, gpus_of, placement_of, stored_placement

shares = st.builds(
    NodeShare,
    gpus=st.integers(0, 8),
    cpus=st.integers(0, 128),
    memory_mb=st.integers(0, 2_000_000),
    gpu_ids=st.lists(st.text("0123456789abcdef-", min_size=1, max_size=8), max_size=8).map(tuple),
    cpu_ids=st.lists(st.integers(0, 255), max_size=8).map(tuple),
)


@given(st.dictionaries(st.text("abcdefgh-0123456789", min_size=1, max_size=12), shares))
def test_stored_and_read_back_is_the_same_placement(placement: dict[str, NodeShare]) -> None:
    assert placement_of(stored_placement(placement)) == dict(sorted(placement.items()))


def test_nothing_stored_is_placed_nowhere_and_ids_are_typed() -> None:
    assert placement_of(None) == {}
    read = placement_of({"n1": {"gpus": 2, "cpus": 1, "memory_mb": 10, "gpu_ids": [0, 1]}})
    assert read == {"n1": NodeShare(2, 1, 10, ("0", "1"), ())}
    assert gpus_of(read) == 2
    assert read["n1"].resources.gpus == 2
