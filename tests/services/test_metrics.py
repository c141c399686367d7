"""The facility's figures for /metrics, read from a real database, and who may scrape them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aifactory.control.loop import ControlLoop
from aifactory.domain.jobs import JobState
from aifactory.domain.ledger import EntryKind
from aifactory.errors import PermissionDenied, Unauthenticated
from aifactory.scheduler import Policy
from aifactory.services.bootstrap import bootstrap
from aifactory.services.metrics import Gpus, ScrapeAccess, read_figures
from aifactory.services.metrics_exposition import ProcessMetrics
from aifactory.store.db import Database
from aifactory.store.models import InferenceKey, LedgerEntry, Node, Project, User
from tests.conftest import FakeClock, seed_facility
from tests.control.fake_executor import FakeExecutor
from tests.control.helpers import submit
from tests.services.money_rows import H, Metered, a_job, a_programme, an_allocation, run_attempt

NOW = 1_700_000_000.0


def a_small_world(db: Database) -> None:
    """The default project under programme `pilot` (besides the bootstrap's research award):
    a job that waited 100 s and ran 1 h on 2 GPUs (2 kWh), one running on 3 of node-1's GPUs
    after 30 s, one pending for 500 s; node-2 (4 GPUs) drained; 1234 tokens served."""
    seed_facility(db, NOW - 10 * H)
    with db.session() as session:
        project = session.scalars(select(Project).where(Project.name == "default")).one()
        user = session.scalars(select(User).where(User.name == "admin")).one()
        pilot = a_programme(session)
        paying = an_allocation(session, "pilot-a", project_id=project.id, programme_id=pilot.id)
        award = LedgerEntry(
            key="award:pilot-a",
            allocation_id=paying.id,
            kind="award",
            gpu_ms=50 * 3_600_000,
            cost_cents=0,
            subsidy_cents=0,
            at=0.0,
            actor="test",
            reason="test",
        )
        session.add(award)
        done = a_job(session, project_id=project.id, user_id=user.id, submitted_at=NOW - 5 * H)
        used = Metered(NOW - 5 * H + 100, NOW - 4 * H + 100, 2, 1, 0, 0, 0, energy_j=7.2e6)
        run_attempt(session, done, 1, used, paying)
        done.state, done.admitted_at = JobState.SUCCEEDED.value, used.started_at
        running = a_job(session, project_id=project.id, user_id=user.id, submitted_at=NOW - H)
        running.state, running.admitted_at = JobState.RUNNING.value, NOW - H + 30
        running.placement = {"node-1": {"gpus": 3, "cpus": 1, "memory_mb": 1, "gpu_ids": []}}
        a_job(session, project_id=project.id, user_id=user.id, submitted_at=NOW - 500)
        session.add(
            Node(
                id="node-2",
                site="NL",
                pool="default",
                executor="local",
                gpus=4,
                gpu_model="a100",
                gpu_ids=[],
                cpus=8,
                memory_mb=1,
                schedulable=False,
                updated_at=NOW,
            )
        )
        session.add(
            InferenceKey(
                project_id=project.id,
                name="k",
                token_hash="h" * 64,
                prefix="afy_i",
                tokens_used=1234,
                created_by="admin",
                created_at=NOW,
            )
        )


def test_figures_count_jobs_queue_waits_gpus_ledger_energy_and_tokens(db: Database) -> None:
    a_small_world(db)

    with db.read() as session:
        found = read_figures(session, NOW)

    assert found.jobs == {(s, "default", "pilot"): 1 for s in ("SUCCEEDED", "RUNNING", "PENDING")}
    assert (found.waiting_jobs, found.waiting_gpus, found.oldest_wait_s) == (1, 1, 500.0)
    assert dict(found.wait_buckets)[10] == 0  # waits of 30 s and 100 s
    assert dict(found.wait_buckets)[60] == 1
    assert dict(found.wait_buckets)[300] == 2
    assert (found.wait_count, found.wait_sum_s) == (2, 130.0)
    assert found.gpus == (
        Gpus("node-1", "h100", busy=3, free=5, unschedulable=0),
        Gpus("node-2", "a100", busy=0, free=0, unschedulable=4),
    )
    assert {k: round(v, 9) for k, v in found.ledger_gpu_hours.items()} == {
        ("research", "awarded"): 100.0,  # the bootstrap's starter allocation
        ("pilot", "awarded"): 50.0,
        ("pilot", "settled"): 2.0,
        ("pilot", "reserved"): 0.0,
    }
    assert found.energy_kwh == pytest.approx({"h100": 2.0})
    assert found.inference_tokens == {"default": 1234}
    assert EntryKind.TOKENS.value not in {kind for _, kind in found.ledger_gpu_hours}


def a_node(node_id: str, block: str | None, *, schedulable: bool = True) -> Node:
    return Node(
        id=node_id,
        site="NL",
        pool="default",
        executor="slurm",
        gpus=4,
        gpu_model="h100",
        gpu_ids=[],
        cpus=8,
        memory_mb=1,
        schedulable=schedulable,
        updated_at=NOW,
        block=block,
    )


def test_figures_show_gangs_across_blocks_and_each_blocks_idle_nodes(db: Database) -> None:
    """leaf0: node-1 (seeded) and a; leaf1: b, c (drained), d; e has no block. A gang inside
    leaf0, one over b and e (across), one job alone on d, one job waiting."""
    seed_facility(db, NOW - H)
    share = {"gpus": 1, "cpus": 1, "memory_mb": 1, "gpu_ids": []}
    with db.session() as session:
        session.get_one(Node, "node-1").block = "leaf0"
        session.add_all(
            [
                a_node("a", "leaf0"),
                a_node("b", "leaf1"),
                a_node("c", "leaf1", schedulable=False),
                a_node("d", "leaf1"),
                a_node("e", None),
            ]
        )
        project = session.scalars(select(Project).where(Project.name == "default")).one()
        user = session.scalars(select(User).where(User.name == "admin")).one()
        placements = [
            (JobState.RUNNING, ["node-1", "a"]),
            (JobState.ADMITTED, ["b", "e"]),
            (JobState.RUNNING, ["d"]),
        ]
        for state, on in placements:
            job = a_job(session, project_id=project.id, user_id=user.id, submitted_at=NOW - H)
            job.state, job.placement = state.value, dict.fromkeys(on, share)
        a_job(session, project_id=project.id, user_id=user.id, submitted_at=NOW - H)

    with db.read() as session:
        found = read_figures(session, NOW)

    assert (found.gangs, found.gangs_across_blocks) == (2, 1)
    assert found.block_idle_nodes == {"leaf0": 0, "leaf1": 0}
    with db.session() as session:
        session.get_one(Node, "c").schedulable = True  # resumed: idle, in leaf1
    with db.read() as session:
        assert read_figures(session, NOW).block_idle_nodes == {"leaf0": 0, "leaf1": 1}


def test_the_control_loop_times_its_ticks_and_its_admission_rounds(db: Database) -> None:
    clock, metrics = FakeClock(), ProcessMetrics()
    with db.session() as session:
        bootstrap(session, now=clock())
    loop = ControlLoop(db, FakeExecutor(gpus=8), Policy(), clock, timed=metrics.loop_timed)

    def count(name: str) -> float:
        return metrics.registry.get_sample_value(f"aifactory_{name}_seconds_count") or 0.0

    assert loop.tick()
    rounds = count("admission_round")
    submit(db, clock(), gpus=2)
    assert loop.tick()  # a round that admits it

    assert count("control_loop_tick") == 2
    assert count("admission_round") == rounds + 1


TOKEN = "s3cret-scrape-token"


@pytest.mark.parametrize(
    ("access", "client", "bearer", "refused"),
    [
        (ScrapeAccess(), "127.0.0.1", None, None),  # neither configured: loopback only
        (ScrapeAccess(), "::1", None, None),
        (ScrapeAccess(), "10.0.0.5", None, PermissionDenied),
        (ScrapeAccess(), None, None, PermissionDenied),
        (ScrapeAccess(TOKEN), "10.0.0.5", TOKEN, None),  # a token alone: from anywhere
        (ScrapeAccess(TOKEN), "127.0.0.1", None, Unauthenticated),
        (ScrapeAccess(TOKEN), "127.0.0.1", TOKEN + "x", Unauthenticated),
        (ScrapeAccess(networks=("10.0.0.0/8",)), "10.0.0.5", None, None),
        (ScrapeAccess(networks=("10.0.0.0/8",)), "::ffff:10.0.0.5", None, None),
        (ScrapeAccess(networks=("10.0.0.0/8",)), "127.0.0.1", None, PermissionDenied),
        (ScrapeAccess(TOKEN, ("10.0.0.0/8",)), "10.0.0.5", None, Unauthenticated),
        (ScrapeAccess(TOKEN, ("10.0.0.0/8",)), "192.0.2.1", TOKEN, PermissionDenied),
        (ScrapeAccess(TOKEN, ("10.0.0.0/8",)), "10.0.0.5", TOKEN, None),
    ],
)
def test_who_may_scrape(
    access: ScrapeAccess, client: str | None, bearer: str | None, refused: type[Exception] | None
) -> None:
    if refused is None:
        access.check(client=client, bearer=bearer)
    else:
        with pytest.raises(refused):
            access.check(client=client, bearer=bearer)
