from __future__ import annotations

import itertools
import json
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aifactory.cli.main import app
from aifactory.sim.scenarios import workload
from aifactory.sim.synthetic import (
    MIXES,
    SyntheticSpec,
    describe,
    family,
    generate,
    offered_load,
    parse_spec,
)
from aifactory.sim.traces import TraceError, TraceJob

SMALL = SyntheticSpec(jobs=3000)


def runtimes_by_kind(jobs: list[TraceJob]) -> dict[tuple[str, str], list[float]]:
    kinds: dict[tuple[str, str], list[float]] = defaultdict(list)
    for job in jobs:
        kinds[(job.user, job.name)].append(job.duration)
    return kinds


def test_the_same_seed_gives_the_same_workload_and_another_seed_another() -> None:
    spec = replace(SMALL, jobs=500)
    first, again = generate(spec), generate(spec)
    assert first.jobs == again.jobs
    assert first.nodes == again.nodes
    assert first.shares == again.shares
    assert generate(replace(spec, seed=2)).jobs != first.jobs


@pytest.mark.parametrize(
    ("load", "mix", "seed"), [(0.7, "small", 1), (0.85, "default", 2), (0.95, "gang", 3)]
)
def test_the_offered_load_is_on_target(load: float, mix: str, seed: int) -> None:
    spec = replace(SMALL, load=load, size_mix=MIXES[mix], seed=seed)
    work = generate(spec)
    assert len(work.jobs) == spec.jobs
    assert offered_load(work.jobs, spec.gpus) == pytest.approx(load, rel=0.10)
    assert sum(n.capacity.gpus for n in work.nodes) == spec.gpus == 8 * len(work.nodes)


def test_sizes_follow_the_mix_and_big_jobs_are_gangs_of_whole_nodes() -> None:
    jobs = generate(SMALL).jobs
    seen = Counter(job.gpus for job in jobs)
    for gpus, share in SMALL.size_mix:
        assert seen[gpus] / len(jobs) == pytest.approx(share, abs=0.03)
    assert all(job.nodes == math.ceil(job.gpus / 8) for job in jobs)
    assert all(job.gpus_per_node <= 8 for job in jobs)


def test_sizes_the_facility_cannot_hold_are_left_out() -> None:
    jobs = generate(replace(SMALL, jobs=500, gpus=16, burst_rate=0.0)).jobs
    assert max(job.gpus for job in jobs) == 16


def test_runtimes_have_a_tail_heavier_than_the_lognormal_body() -> None:
    def over_median(spec: SyntheticSpec, quantile: float) -> float:
        runtimes = sorted(job.duration for job in generate(spec).jobs)
        return runtimes[int(quantile * len(runtimes))] / statistics.median(runtimes)

    body = replace(SMALL, jobs=10_000, tail_share=0.0, estimate_quality=0.0, max_runtime_s=3e6)
    tailed = replace(body, tail_share=0.1, tail_alpha=1.0)
    sigma = SMALL.runtime_sigma
    assert over_median(body, 0.99) == pytest.approx(math.exp(sigma * 2.326), rel=0.3)  # ≈ 41
    assert over_median(tailed, 0.999) > 3 * math.exp(sigma * 3.090)  # the lognormal's: ≈ 140
    assert over_median(SMALL, 0.99) > 20
    assert max(job.duration for job in generate(SMALL).jobs) <= SMALL.max_runtime_s


def test_limits_are_round_generous_and_cover_every_runtime() -> None:
    jobs = generate(SMALL).jobs
    assert all(job.time_limit is not None and job.time_limit >= job.duration for job in jobs)
    ratios = [job.duration / job.time_limit for job in jobs if job.time_limit]
    assert 0.03 < statistics.median(ratios) < 0.5  # most jobs use a small part of their limit
    longest = sum(job.time_limit == 7 * 86400 for job in jobs) / len(jobs)
    assert 0.05 < longest < 0.6  # some users always ask the most


def test_estimate_quality_sets_how_closely_a_job_repeats_its_kind() -> None:
    exact = runtimes_by_kind(generate(replace(SMALL, estimate_quality=1.0)).jobs)
    assert all(len(set(runtimes)) == 1 for runtimes in exact.values())
    loose = runtimes_by_kind(generate(replace(SMALL, estimate_quality=0.0)).jobs)
    spreads = [max(r) / min(r) for r in loose.values() if len(r) >= 10]
    assert spreads
    assert statistics.median(spreads) > 20
    # the key the scheduler learns by: one kind keeps one limit unless a job outruns it
    assert len({(j.user, j.name) for j in generate(SMALL).jobs}) <= 12 * 3 * 4


def test_the_day_and_week_cycles_and_tenant_skew_show() -> None:
    jobs = generate(replace(SMALL, burst_rate=0.0)).jobs
    hours = Counter(int(job.submit % 86400 // 3600) for job in jobs)
    assert hours[14] > 2 * hours[2]
    days = Counter(int(job.submit // 86400) % 7 for job in jobs)
    weekdays = sum(days[d] for d in range(5)) / 5
    assert (days[5] + days[6]) / 2 < weekdays
    tenants = Counter(job.project for job in jobs)
    assert tenants["t01"] > 2 * tenants["t04"]
    assert sum(job.preemptible for job in jobs) / len(jobs) == pytest.approx(0.3, abs=0.05)


def test_bursts_submit_many_similar_jobs_at_once() -> None:
    jobs = generate(replace(SMALL, burst_rate=4.0, burst_size=30)).jobs
    at_once = Counter((job.submit, job.user, job.name, job.gpus) for job in jobs)
    assert max(at_once.values()) >= 10


def test_shares_are_per_tenant_and_sum_to_one() -> None:
    equal = generate(replace(SMALL, jobs=100, tenants=4)).shares
    assert equal == {t: 0.25 for t in ("t01", "t02", "t03", "t04")}
    weighted = generate(replace(SMALL, jobs=100, tenants=3, weights=(2.0, 1.0, 1.0))).shares
    assert weighted == {"t01": 0.5, "t02": 0.25, "t03": 0.25}


def test_the_family_is_a_grid_of_named_settings() -> None:
    members = family()
    names = [name for name, _ in members]
    assert len(set(names)) == len(names) == 36
    settings_ = {name.rsplit("-s", 1)[0] for name in names}
    assert len(settings_) >= 12
    assert {(s.load, s.estimate_quality, s.size_mix) for _, s in members} == {
        (load, q, MIXES[mix])
        for load in (0.7, 0.85, 0.95)
        for q in (0.2, 0.8)
        for mix in ("small", "gang")
    }
    assert dict(members)["syn-l85-q8-gang-s2"] == SyntheticSpec(
        load=0.85, estimate_quality=0.8, size_mix=MIXES["gang"], seed=2
    )


def test_parse_spec_reads_names_overrides_and_toml(tmp_path: Path) -> None:
    assert parse_spec("jobs=5000,load=0.9,seed=3") == SyntheticSpec(jobs=5000, load=0.9, seed=3)
    assert parse_spec("syn-l70-q2-small-s7") == SyntheticSpec(
        load=0.7, estimate_quality=0.2, size_mix=MIXES["small"], seed=7
    )
    assert parse_spec("syn-l70-q2-small-s7,jobs=10").jobs == 10
    assert parse_spec("size_mix=1:0.5;8:0.5,tenants=2,weights=3;1").size_mix == ((1, 0.5), (8, 0.5))
    spec = SyntheticSpec(jobs=10, tenants=2, weights=(3.0, 1.0), size_mix=MIXES["gang"])
    assert parse_spec(describe(spec)) == spec
    path = tmp_path / "w.toml"
    path.write_text('jobs = 700\nload = 0.9\nsize_mix = "gang"\nweights = [1, 2]\ntenants = 2\n')
    assert parse_spec(str(path)) == SyntheticSpec(
        jobs=700, load=0.9, size_mix=MIXES["gang"], weights=(1.0, 2.0), tenants=2
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("jbos=5", "unknown key 'jbos'"),
        ("jobs=many", "jobs must be a whole number"),
        ("jobs=2.5", "jobs must be a whole number"),
        ("load=0", "load must be above 0"),
        ("day_amplitude=1.5", "day_amplitude must be between 0 and 1"),
        ("gpus=100", "gpus must be a whole number of 8-GPU nodes"),
        ("weights=1;2", "weights must give one share per tenant"),
        ("size_mix=1:x", "size_mix must be a number"),
        ("size_mix=512:1", "size_mix gives no size"),
        ("burst_rate=500", "burst_rate × burst_size"),
        ("jobs", "unknown setting 'jobs'"),
        ("syn-l85-q8-gang-s1,seed", "'seed' is not key=value"),
        ("jobs=1,jobs=2", "jobs is given twice"),
        ("missing.toml", "no such synthetic spec file"),
    ],
)
def test_parse_spec_errors_name_the_key_and_the_reason(text: str, named: str) -> None:
    with pytest.raises(TraceError, match=named.replace("(", r"\(")):
        parse_spec(text)


def test_toml_errors_name_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("jobs = true\n")
    with pytest.raises(TraceError, match=r"bad\.toml: synthetic spec: jobs must be a whole"):
        parse_spec(str(path))


def test_the_simulator_loads_synthetic_traces() -> None:
    work = workload("synthetic:syn-l85-q8-gang-s1", gpus=64, jobs=200)
    assert work.name == "synthetic:syn-l85-q8-gang-s1"
    assert len(work.jobs) == 200
    assert sum(n.capacity.gpus for n in work.nodes) == 64
    assert {job.project for job in work.jobs} <= set(work.shares)
    with pytest.raises(TraceError, match="gpus must be"):
        workload("synthetic:jobs=10", gpus=12)


@settings(max_examples=15, deadline=None)
@given(
    gpus=st.sampled_from([8, 16, 64, 256]),
    jobs=st.integers(1, 150),
    quality=st.floats(0, 1),
    tail=st.floats(0, 0.5),
    seed=st.integers(0, 10_000),
)
def test_every_job_fits_the_facility_in_order_within_its_limit(
    gpus: int, jobs: int, quality: float, tail: float, seed: int
) -> None:
    spec = SyntheticSpec(
        gpus=gpus, jobs=jobs, estimate_quality=quality, tail_share=tail, burst_rate=0.1, seed=seed
    )
    work = generate(spec)
    assert [job.job_id for job in work.jobs] == list(range(1, jobs + 1))
    assert all(a.submit <= b.submit for a, b in itertools.pairwise(work.jobs))
    for job in work.jobs:
        assert 1 <= job.gpus <= gpus
        assert job.nodes * 8 <= gpus
        assert 1 <= job.duration <= spec.max_runtime_s
        assert job.time_limit is not None
        assert job.time_limit >= job.duration
        assert job.project in work.shares


def test_sim_cli_replays_a_synthetic_workload(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        app,
        [
            "sim",
            "--synthetic",
            "jobs=300,gpus=64",
            "--policies",
            "fifo,fairshare",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "fairshare" in result.output
    report = json.loads(out.read_text())
    assert (report["trace"], report["jobs"], report["gpus"]) == (
        "synthetic:jobs=300,gpus=64",
        300,
        64,
    )
    assert report["policies"]["fairshare"]["unfinished"] == 0


def test_sim_cli_wants_one_workload_and_names_bad_spec_keys() -> None:
    neither = CliRunner().invoke(app, ["sim", "--policies", "fifo"])
    assert neither.exit_code != 0
    assert "--trace or a --synthetic" in neither.output
    bad = CliRunner().invoke(app, ["sim", "--synthetic", "jobs=10,colour=red"])
    assert bad.exit_code != 0
    assert "unknown key 'colour'" in bad.output
