"""One round, one verdict per waiting job (scheduler.verdict): holds, releases, starts, waits."""

from __future__ import annotations

from dataclasses import replace

from aifactory.domain.datasets import DatasetRead, VersionState
from aifactory.domain.programmes import Funds, Window
from aifactory.scheduler import Hold, Policy, Start
from aifactory.scheduler.decisions import Release
from aifactory.scheduler.snapshot import Admission, PendingJob, ProjectView
from aifactory.scheduler.verdict import decide, judge
from tests.scheduler.builders import a_job, a_node, running, snapshot

HOUR_MS = 3_600_000


def _funds(project: str, gpu_hours: float) -> Funds:
    return Funds(1, f"{project}-grant", project, Window(0, 1e9), round(gpu_hours * HOUR_MS))


def _read(project: str = "p", *, readable: bool = True, state: str = "present") -> DatasetRead:
    return DatasetRead(project, "corpus", 2, VersionState(state), False, readable)


def test_a_job_its_project_cannot_pay_for_is_held_and_the_rest_run() -> None:
    facts = Admission(
        budgets_enforced=True, funds={"poor": (_funds("poor", 0.5),), "rich": (_funds("rich", 9),)}
    )
    view = replace(
        snapshot([a_node("n1")], pending=[a_job(1, "poor"), a_job(2, "rich")]), admission=facts
    )
    found = decide(view, Policy(), now=10.0)
    holds = [d for d in found.decisions if isinstance(d, Hold)]
    assert [(h.job_id, h.reason) for h in holds] == [
        (1, "no budget: allocation poor-grant has 0.5 GPU-h left, job needs up to 1.0")
    ]
    assert [d.job_id for d in found.decisions if isinstance(d, Start)] == [2]
    assert found.verdicts is not None
    assert found.verdicts[1].held
    assert found.verdicts[1].position is None
    assert 2 not in found.verdicts  # started: it waits no more


def test_cpu_only_work_and_unenforced_budgets_are_never_held_for_money() -> None:
    broke = {"p": (_funds("p", 0),)}
    cpu_only = a_job(1).gpus(0)
    for facts, job in [
        (Admission(budgets_enforced=True, funds=broke), cpu_only),
        (Admission(budgets_enforced=False, funds=broke), a_job(2)),
    ]:
        view = replace(snapshot([a_node("n1")], pending=[job]), admission=facts)
        assert [type(d) for d in decide(view, Policy(), now=0).decisions] == [Start]


def test_a_job_without_a_grant_or_with_data_going_is_held_for_data_first() -> None:
    facts = Admission(
        budgets_enforced=True,
        funds={},  # no money either: the data hold is named, it is the harder one to mend
        data={1: (_read(readable=False),), 2: (_read(state="erasing"),)},
    )
    view = replace(snapshot([a_node("n1")], pending=[a_job(1), a_job(2)]), admission=facts)
    reasons = {d.job_id: d.reason for d in decide(view, Policy(), 0).decisions}
    assert reasons == {
        1: "data: project p has no valid grant for dataset corpus "
        "(its owner grants use: aifactory datasets grant)",
        2: "data: dataset corpus version 2 is erasing",
    }


def test_a_held_job_whose_hold_is_mended_is_released_and_may_start_in_the_same_round() -> None:
    held = replace(a_job(1).build(), held="data: no grant", uses_datasets=True)
    still = replace(a_job(2).build(), held="data: no grant", uses_datasets=True)
    facts = Admission(data={1: (_read(),), 2: (_read(readable=False),)})
    view = replace(snapshot([a_node("n1")]), held=(held, still), admission=facts)
    found = decide(view, Policy(), 0)
    assert found.decisions[0] == Release(1, "its project may read its datasets now")
    assert [d.job_id for d in found.decisions if isinstance(d, Start)] == [1]
    assert found.verdicts is not None
    assert found.verdicts[2].held
    assert not any(d.job_id == 2 for d in found.decisions)  # held already: nothing to do


def test_verdicts_see_the_facility_after_the_rounds_starts() -> None:
    """Two 8-GPU jobs, one node: the first starts, the second waits for it with an estimate."""
    view = snapshot([a_node("n1")], pending=[a_job(1).gpus(8).limit(600), a_job(2).gpus(8)])
    found = decide(view, Policy(), now=100.0)
    assert [d.job_id for d in found.decisions] == [1]
    assert found.verdicts is not None
    second = found.verdicts[2]
    assert second.position == 1
    assert not second.held
    assert "GPUs are short: at most 0 free" in second.reason
    assert second.estimated_start == 700.0  # when the first one's limit runs out


def test_a_job_that_fits_but_was_kept_back_is_told_the_policy_keeps_the_room() -> None:
    """FIFO without backfill: the head of the line needs the whole node; a small job behind
    it fits the free GPUs and is kept waiting on purpose."""
    busy = running(9, {"n1": 4}, limit=1000)
    view = snapshot([a_node("n1")], [busy], [a_job(1).gpus(8), a_job(2).gpus(1)])
    found = decide(view, Policy(name="fifo", backfill=False), now=0)
    assert found.decisions == []
    assert found.verdicts is not None
    assert found.verdicts[2].reason == (
        "fits the free room, but the fifo policy keeps it for the 1 job(s) ahead in line: "
        "starting this one now would delay them"
    )
    assert judge(view, Policy(), 0)[2].reason.startswith("fits now")  # no round carried out


def test_quota_and_fair_share_are_named_in_the_wait() -> None:
    busy = running(9, {"n1": 8}, limit=1000, project="heavy")
    projects = {
        "heavy": ProjectView("heavy", usage=1e9),
        "light": ProjectView("light", usage=0.0),
        "guaranteed": ProjectView("guaranteed", quota_gpus=2),
    }
    view = replace(
        snapshot(
            [a_node("n1")],
            [busy],
            [a_job(1, "heavy"), a_job(2, "light"), a_job(3, "guaranteed").gpus(2)],
        ),
        projects=projects,
    )
    found = decide(view, Policy(), now=10.0)
    assert found.verdicts is not None
    assert "over its fair share" in found.verdicts[1].reason
    assert "over its fair share" not in found.verdicts[2].reason
    assert "is guaranteed 2 GPU(s)" in found.verdicts[3].reason


def test_without_verdicts_a_round_only_decides() -> None:
    view = snapshot([a_node("n1")], pending=[a_job(1)])
    found = decide(view, Policy(), 0, with_verdicts=False)
    assert found.verdicts is None
    assert [type(d) for d in found.decisions] == [Start]


def test_a_pending_job_keeps_no_hold_it_had() -> None:
    job: PendingJob = replace(a_job(1).build(), held="no budget: none")
    view = replace(snapshot([a_node("n1")]), held=(job,))
    found = decide(view, Policy(), 0)
    started = [d for d in found.decisions if isinstance(d, Start)]
    assert found.decisions[0] == Release(1, "the project's allocation can pay for it now")
    assert len(started) == 1


def test_a_hold_a_person_made_is_never_released_by_a_round() -> None:
    kept = replace(a_job(1).build(), held="held by alice: waiting for the new data")
    view = replace(snapshot([a_node("n1")]), held=(kept,))
    found = decide(view, Policy(), 0)
    assert found.decisions == []
    assert found.verdicts is not None
    assert found.verdicts[1].held
    assert found.verdicts[1].reason == "held by alice: waiting for the new data"
