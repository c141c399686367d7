"""Why a job could never fit a facility, and the `Resources` arithmetic under it."""

from __future__ import annotations

import dataclasses

import pytest

from aifactory.domain.jobs import JobSpec
from aifactory.domain.nodes import Node, Unfit, why_never_fits
from aifactory.domain.resources import Resources


def node(
    node_id: str,
    gpus: int = 8,
    cpus: int = 64,
    memory_mb: int = 512_000,
    model: str | None = "h100",
) -> Node:
    return Node(node_id, "NL", Resources(gpus, cpus, memory_mb), gpu_model=model)


def spec(
    gpus: int = 0,
    nodes: int = 1,
    cpus: int = 1,
    memory_mb: int = 1024,
    model: str | None = None,
) -> JobSpec:
    return JobSpec(
        name="j",
        command=("true",),
        gpus_per_node=gpus,
        nodes=nodes,
        cpus_per_node=cpus,
        memory_mb_per_node=memory_mb,
        gpu_model=model,
    )


FACILITY = (
    node("h1", gpus=8, cpus=64, memory_mb=512_000, model="h100"),
    node("h2", gpus=8, cpus=64, memory_mb=512_000, model="h100"),
    node("a1", gpus=4, cpus=128, memory_mb=1_024_000, model="a100"),
    node("c1", gpus=0, cpus=32, memory_mb=128_000, model=None),
)


# ---- why_never_fits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        pytest.param(
            spec(gpus=9),
            Unfit("gpus", "asks for 9 GPUs per node; the largest node has 8"),
            id="too-many-gpus",
        ),
        pytest.param(
            spec(cpus=129),
            Unfit("cpus", "asks for 129 CPUs per node; the largest node has 128"),
            id="too-many-cpus",
        ),
        pytest.param(
            spec(memory_mb=1_024_001),
            Unfit(
                "memory_mb", "asks for 1024001 MB of memory per node; the largest node has 1024000"
            ),
            id="too-much-memory",
        ),
        pytest.param(
            spec(gpus=1, model="b200"),
            Unfit("gpu_model", "no node has GPU model 'b200' (offered: a100, h100)"),
            id="unknown-gpu-model",
        ),
        pytest.param(
            spec(gpus=8, nodes=3),
            Unfit("nodes", "asks for 3 nodes of this shape; the facility has 2"),
            id="more-nodes-than-exist-of-that-shape",
        ),
        pytest.param(
            spec(nodes=5),
            Unfit("nodes", "asks for 5 nodes of this shape; the facility has 4"),
            id="more-nodes-than-exist-at-all",
        ),
        pytest.param(
            spec(gpus=2, nodes=2, model="a100"),
            Unfit("nodes", "asks for 2 nodes of this shape; the facility has 1"),
            id="model-limits-the-node-count",
        ),
        pytest.param(
            spec(gpus=8, cpus=128),
            Unfit("nodes", "asks for 1 nodes of this shape; the facility has 0"),
            id="each-dimension-fits-somewhere-but-not-together",
        ),
        pytest.param(
            spec(gpus=8, model="a100"),
            Unfit("nodes", "asks for 1 nodes of this shape; the facility has 0"),
            id="model-exists-but-too-small",
        ),
    ],
)
def test_never_fits(job: JobSpec, expected: Unfit) -> None:
    assert why_never_fits(job, FACILITY) == expected


@pytest.mark.parametrize(
    "job",
    [
        pytest.param(spec(), id="smallest"),
        pytest.param(spec(gpus=8), id="whole-gpu-node"),
        pytest.param(spec(gpus=8, nodes=2, model="h100"), id="gang-of-two-h100"),
        pytest.param(spec(gpus=4, nodes=3), id="three-nodes-with-4-gpus"),
        pytest.param(spec(cpus=128, memory_mb=1_024_000), id="largest-cpu-and-memory"),
        pytest.param(spec(nodes=4), id="cpu-only-on-every-node"),
        pytest.param(spec(gpus=0, cpus=2, model="b200"), id="model-ignored-without-gpus"),
        pytest.param(spec(gpus=4, model="a100"), id="a100-exactly"),
    ],
)
def test_fits_returns_none(job: JobSpec) -> None:
    assert why_never_fits(job, FACILITY) is None


def test_no_nodes_at_all() -> None:
    assert why_never_fits(spec(), []) == Unfit("nodes", "the facility has no nodes registered")


def test_accepts_any_iterable_of_nodes() -> None:
    assert why_never_fits(spec(gpus=8), iter(FACILITY)) is None
    assert why_never_fits(spec(), iter(())) == Unfit(
        "nodes", "the facility has no nodes registered"
    )


def test_gpu_model_asked_on_a_facility_without_gpu_models() -> None:
    cpu_only = [node("c1", gpus=2, model=None)]
    assert why_never_fits(spec(gpus=1, model="h100"), cpu_only) == Unfit(
        "gpu_model", "no node has GPU model 'h100' (offered: none)"
    )


def test_per_node_checks_come_before_the_model_check() -> None:
    # Both the GPU count and the model are wrong: the first field named is the GPU count.
    result = why_never_fits(spec(gpus=16, model="b200"), FACILITY)
    assert result is not None
    assert result.field == "gpus"


def test_exactly_at_capacity_fits() -> None:
    one = [node("n1", gpus=8, cpus=64, memory_mb=512_000)]
    assert why_never_fits(spec(gpus=8, cpus=64, memory_mb=512_000), one) is None
    assert why_never_fits(spec(gpus=8, cpus=65, memory_mb=512_000), one) == Unfit(
        "cpus", "asks for 65 CPUs per node; the largest node has 64"
    )


def test_could_ever_host() -> None:
    h100 = node("h1", gpus=8, model="h100")
    assert h100.could_ever_host(spec(gpus=8))
    assert h100.could_ever_host(spec(gpus=8, model="h100"))
    assert not h100.could_ever_host(spec(gpus=1, model="a100"))
    assert h100.could_ever_host(spec(gpus=0, model="a100"))
    assert not h100.could_ever_host(spec(gpus=9))
    assert not h100.could_ever_host(spec(cpus=65))
    assert not h100.could_ever_host(spec(memory_mb=512_001))


def test_nodes_and_unfit_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        FACILITY[0].id = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Unfit("a", "b").field = "c"  # type: ignore[misc]


# ---- Resources ------------------------------------------------------------------------------


def test_resources_default_to_nothing() -> None:
    assert Resources() == Resources(0, 0, 0)


def test_resources_add_and_subtract_component_wise() -> None:
    a = Resources(4, 16, 1000)
    b = Resources(1, 2, 300)
    assert a + b == Resources(5, 18, 1300)
    assert a - b == Resources(3, 14, 700)
    assert a - b + b == a
    assert a - a == Resources()
    assert a + Resources() == a


def test_resources_subtraction_can_go_negative() -> None:
    diff = Resources(1, 8, 100) - Resources(2, 4, 50)
    assert diff == Resources(-1, 4, 50)


@pytest.mark.parametrize(
    ("small", "big", "le"),
    [
        (Resources(1, 1, 1), Resources(1, 1, 1), True),
        (Resources(0, 0, 0), Resources(1, 1, 1), True),
        (Resources(2, 1, 1), Resources(1, 1, 1), False),
        (Resources(1, 2, 1), Resources(1, 1, 1), False),
        (Resources(1, 1, 2), Resources(1, 1, 1), False),
        # Component-wise, not lexicographic: more GPUs does not outweigh fewer CPUs.
        (Resources(1, 9, 1), Resources(2, 8, 1), False),
    ],
)
def test_resources_compare_component_wise(small: Resources, big: Resources, le: bool) -> None:
    assert (small <= big) is le
    assert (big >= small) is le


def test_resources_are_a_partial_order() -> None:
    a = Resources(2, 1, 0)
    b = Resources(1, 2, 0)
    assert not a <= b
    assert not b <= a
    assert not a >= b
    assert not b >= a


def test_resources_are_hashable_values() -> None:
    assert {Resources(1, 2, 3), Resources(1, 2, 3)} == {Resources(1, 2, 3)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        Resources().gpus = 1  # type: ignore[misc]


# ---- one network block ---------------------------------------------------------------------
BLOCKS = tuple(
    dataclasses.replace(node(f"n{i}"), block=block)
    for i, block in enumerate(["b1", "b1", "b1", "b2", "b2"])
)


def test_a_gang_that_must_stay_in_one_block_needs_a_block_that_large() -> None:
    inside = dataclasses.replace(spec(gpus=8, nodes=4), one_block=True)
    assert why_never_fits(inside, BLOCKS) == Unfit(
        "one_block",
        "asks for 4 nodes inside one network block; the largest block has 3 nodes of this shape",
    )
    assert why_never_fits(dataclasses.replace(inside, nodes=3), BLOCKS) is None
    assert why_never_fits(dataclasses.replace(inside, one_block=False), BLOCKS) is None


def test_one_block_asks_nothing_of_a_facility_without_topology() -> None:
    inside = dataclasses.replace(spec(gpus=8, nodes=2), one_block=True)
    assert why_never_fits(inside, FACILITY) is None
