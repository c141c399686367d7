"""The simulator's shortcuts for scale (issue 22): they change no decision.

The engine skips asking `schedule` at instants where no waiting job has room anywhere; any
other scheduler callable (here a plain wrapper around `schedule`) is asked at every instant,
so the two runs side by side show the skip is invisible in every outcome.
"""

from __future__ import annotations

from typing import Any

import pytest

from aifactory.scheduler import Policy, Snapshot, schedule
from aifactory.scheduler.decisions import Decision
from aifactory.scheduler.maintenance import Window
from aifactory.sim.engine import SimResult, Simulator
from aifactory.sim.replay import POLICIES, replay
from aifactory.sim.synthetic import generate, parse_spec

# Small, busy, on 4-GPU nodes with gangs: the queue backs up, so many instants start nothing.
WORK = generate(
    parse_spec("gpus=64,gpus_per_node=4,jobs=300,load=0.95,size_mix=1:0.4;4:0.3;8:0.2;32:0.1")
)
IDS = [n.id for n in WORK.nodes]
SETUPS: dict[str, dict[str, Any]] = {
    "plain": {},
    "quotas": {"quotas": {"t01": 16, "t02": 8}},
    "maintenance": {
        "maintenance": [
            Window(frozenset(IDS[:4]), 5_000.0, 40_000.0, window_id=1),
            Window(frozenset(IDS), 80_000.0, 90_000.0, window_id=2),
        ]
    },
}


def every_instant(snapshot: Snapshot, policy: Policy, now: float) -> list[Decision]:
    return schedule(snapshot, policy, now)


def outcome(result: SimResult) -> tuple[object, ...]:
    done = sorted((f.job.job_id, f.start, f.end, f.nodes) for f in result.finished)
    return (done, result.samples, result.unfinished, result.preemptions, result.lost_gpu_s)


@pytest.mark.parametrize("setup", SETUPS)
@pytest.mark.parametrize("policy", ["fifo", "easy", "slurm", "fairshare", "oracle"])
def test_skipping_instants_where_nothing_fits_changes_no_decision(policy: str, setup: str) -> None:
    def run(scheduler: Any) -> SimResult:
        return Simulator(
            WORK.jobs, WORK.nodes, POLICIES[policy], scheduler, shares=WORK.shares, **SETUPS[setup]
        ).run()

    skipping, asked = run(schedule), run(every_instant)
    assert outcome(skipping) == outcome(asked)
    assert len(skipping.decision_s) <= len(asked.decision_s)


def test_the_skip_spares_calls_on_a_busy_facility() -> None:
    skipping = Simulator(WORK.jobs, WORK.nodes, POLICIES["slurm"], schedule).run()
    asked = Simulator(WORK.jobs, WORK.nodes, POLICIES["slurm"], every_instant).run()
    assert len(skipping.decision_s) < 0.9 * len(asked.decision_s)


def test_fairshare_with_quotas_is_asked_at_every_instant_since_it_may_preempt() -> None:
    quotas = SETUPS["quotas"]["quotas"]
    skipping = Simulator(WORK.jobs, WORK.nodes, POLICIES["fairshare"], schedule, quotas=quotas)
    assert not skipping.skips


def test_a_wall_clock_cap_stops_the_replay_and_counts_what_is_left() -> None:
    result = Simulator(WORK.jobs, WORK.nodes, POLICIES["slurm"], schedule, max_wall_s=0).run()
    assert result.capped
    assert len(result.finished) < len(WORK.jobs)
    assert result.unfinished == len(WORK.jobs) - len(result.finished)


def test_without_a_cap_the_replay_completes() -> None:
    (run,) = replay(WORK, ["slurm"], max_wall_s=None)
    assert not run.result.capped
    assert run.result.unfinished == 0
    assert len(run.result.finished) == len(WORK.jobs)
