from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from aifactory.sim.limits import LADDER, user_limit, with_limits
from aifactory.sim.scenarios import workload
from aifactory.sim.traces import TraceError, TraceJob, load_generic, load_itp, nodes_for


def test_the_shipped_itp_traces_are_complete() -> None:
    assert len(load_itp(["cluster10"])) == 260
    jobs = load_itp()
    assert len(jobs) == 69_351
    gpu_hours = sum(j.duration * j.gpus for j in jobs) / 3600
    assert gpu_hours == pytest.approx(1_632_720, abs=1)
    assert {j.project for j in jobs} == {f"cluster{i:02d}" for i in range(1, 11)}
    assert all(a.submit <= b.submit for a, b in itertools.pairwise(jobs))


def test_big_jobs_are_gangs_of_whole_nodes() -> None:
    assert [nodes_for(g) for g in (1, 8, 9, 64)] == [1, 1, 2, 8]
    job = TraceJob(1, submit=0, duration=1, gpus=64, nodes=8)
    assert job.gpus_per_node == 8


def test_generic_csv_with_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("submit_time,duration,gpus,project,time_limit\n10,100,16,nlp,3600\n0,5,1,,\n")
    jobs = load_generic(path)
    assert [(j.submit, j.gpus, j.nodes, j.project, j.time_limit) for j in jobs] == [
        (0.0, 1, 1, "default", None),
        (10.0, 16, 2, "nlp", 3600.0),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("submit_time,duration\n1,2\n", "column 'gpus' is required"),
        ("submit_time,duration,gpus\n1,x,1\n", "duration 'x' is not a number"),
        ("submit_time,duration,gpus\n1,-2,1\n", "duration must be 0 or more"),
    ],
)
def test_generic_csv_errors_name_file_line_and_column(
    tmp_path: Path, body: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(TraceError, match=message) as caught:
        load_generic(path)
    assert f"{path}:2" in str(caught.value)


def test_unknown_scenarios_and_openb_without_its_files_are_clear_errors() -> None:
    with pytest.raises(TraceError, match="neither a scenario"):
        workload("no-such-trace")
    with pytest.raises(TraceError, match="--openb-dir"):
        workload("openb")


def test_user_limits_cover_the_runtime_on_round_values_and_are_seeded() -> None:
    rng = random.Random(7)
    for duration in (1, 59, 3600, 86_400, 500_000):
        limit = user_limit(duration, rng)
        assert limit >= duration
        assert limit in LADDER or limit % 86_400 == 0
    jobs = [TraceJob(i, submit=i, duration=100 * i + 1, gpus=1) for i in range(1, 50)]
    assert with_limits(jobs, seed=3) == with_limits(jobs, seed=3)
    assert with_limits(jobs, seed=3) != with_limits(jobs, seed=4)
    kept = with_limits([TraceJob(1, submit=0, duration=5, gpus=1, time_limit=9)])
    assert kept[0].time_limit == 9
