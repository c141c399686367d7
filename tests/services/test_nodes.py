"""The cluster view: every node with the active jobs on its GPUs, named only as far as the viewer
may read that project's jobs (another tenant's job keeps its GPUs, loses its id and project)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from aifactory.domain.jobs import JobState
from aifactory.services.nodes import ClusterView, JobOnNode, cluster
from aifactory.services.sites import set_site
from aifactory.services.tenancy import project_by_name, user_by_name
from aifactory.store.db import Database
from tests.services.accounting_world import T0, build_world, who
from tests.services.money_rows import a_job


def placed(session: Session, project: str, user: str, state: JobState, **gpus: list[str]) -> int:
    """A job of `project` in `state`, placed on GPUs by node, as the control loop records it."""
    admin = who(session, "admin")
    job = a_job(
        session,
        project_id=project_by_name(session, admin, project).id,
        user_id=user_by_name(session, user).id,
        submitted_at=T0,
    )
    placement: dict[str, Any] = {
        node.replace("_", "-"): {"gpus": len(ids), "cpus": 1, "memory_mb": 1024, "gpu_ids": ids}
        for node, ids in gpus.items()
    }
    job.state, job.placement = state.value, placement
    return job.id


@pytest.fixture
def jobs(db: Database) -> tuple[int, int, int]:
    """owen's lab job on GPUs 0-1, bob's shop job on GPU 5, and a finished lab job on GPU 7;
    node-1 stands at site NL, in the Netherlands."""
    build_world(db)
    with db.session() as s:
        set_site(s, who(s, "admin"), "NL", country="NL", description=None, now=T0)
        lab = placed(s, "lab", "owen", JobState.RUNNING, node_1=["0", "1"])
        shop = placed(s, "shop", "bob", JobState.ADMITTED, node_1=["5"])
        done = placed(s, "lab", "owen", JobState.SUCCEEDED, node_1=["7"])
    return lab, shop, done


def jobs_on(view: ClusterView) -> list[JobOnNode]:
    (node,) = view.nodes
    return list(node.jobs)


def test_a_member_sees_their_projects_jobs_and_another_projects_gpus_without_names(
    db: Database, jobs: tuple[int, int, int]
) -> None:
    lab, _, _ = jobs
    with db.read() as s:
        seen = cluster(s, who(s, "alice"))

    assert not seen.every_project
    (node,) = seen.nodes
    assert (node.id, node.country, node.gpu_model, node.gpu_ids) == (
        "node-1",
        "NL",
        "h100",
        tuple(str(i) for i in range(8)),
    )
    assert jobs_on(seen) == [
        JobOnNode(lab, id_of(db, "lab"), "lab", ("0", "1")),
        JobOnNode(None, None, None, ("5",)),
    ]
    assert jobs_on(seen)[1].hidden


def test_an_operator_sees_every_active_job_by_project(
    db: Database, jobs: tuple[int, int, int]
) -> None:
    lab, shop, _ = jobs
    with db.read() as s:
        seen = cluster(s, who(s, "olga"))

    assert seen.every_project
    assert [(j.job_id, j.project, j.gpu_ids) for j in jobs_on(seen)] == [
        (lab, "lab", ("0", "1")),
        (shop, "shop", ("5",)),
    ]


def test_someone_with_no_project_sees_busy_gpus_and_no_tenant(
    db: Database, jobs: tuple[int, int, int]
) -> None:
    del jobs
    with db.read() as s:
        seen = cluster(s, who(s, "rita"))

    assert [j.hidden for j in jobs_on(seen)] == [True, True]
    assert {g for j in jobs_on(seen) for g in j.gpu_ids} == {"0", "1", "5"}


def id_of(db: Database, name: str) -> int:
    with db.read() as s:
        return project_by_name(s, who(s, "admin"), name).id
