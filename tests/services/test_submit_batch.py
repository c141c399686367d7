"""Group-committed submissions: in one batch each stands or falls on its own, and keys hold."""

from __future__ import annotations

from aifactory.domain.jobs import JobSpec
from aifactory.domain.tenancy import FacilityRole, OrgKind
from aifactory.errors import InvalidInput, NotFound
from aifactory.services.auth import principal_of
from aifactory.services.jobs import Submission, Submitted, submit_jobs
from aifactory.services.tenancy import (
    create_organisation,
    create_project,
    create_user,
    user_by_name,
)
from aifactory.store.db import Database
from aifactory.store.models import Job, JobEvent
from tests.conftest import seed_facility

SPEC = JobSpec(name="train", command=("python", "train.py"), gpus_per_node=1)


def test_one_batch_mixes_successes_refusals_and_repeated_keys(db: Database) -> None:
    seed_facility(db, now=0.0)
    with db.session() as s:
        admin = principal_of(s, user_by_name(s, "admin"))
        create_organisation(s, admin, name="uva", kind=OrgKind.UNIVERSITY, now=0.0)
        create_user(s, admin, name="eve", email=None, facility_role=FacilityRole.USER, now=0.0)
        create_project(s, admin, name="private", organisation="uva", owner="admin", now=0.0)
        create_project(s, admin, name="eves", organisation="uva", owner="eve", now=0.0)
        eve = principal_of(s, user_by_name(s, "eve"))
        stored = submit_jobs(s, [Submission(admin, SPEC, None, "k-old")], now=1.0)[0]
    assert isinstance(stored, Submitted)

    too_big = JobSpec(name="big", command=("x",), gpus_per_node=99)
    batch = [
        Submission(admin, SPEC, None, None),  # 0: fine
        Submission(admin, too_big, None, None),  # 1: can never fit
        Submission(eve, SPEC, "private", None),  # 2: not her project
        Submission(admin, SPEC, None, "k-new"),  # 3: a new key
        Submission(admin, SPEC, None, "k-new"),  # 4: the same key again, same batch
        Submission(admin, SPEC, None, "k-old"),  # 5: a key already stored
        Submission(eve, SPEC, None, None),  # 6: fine, into her default project
    ]
    with db.session() as s:
        outcomes = submit_jobs(s, batch, now=2.0)

    ok = [o for o in outcomes if isinstance(o, Submitted)]
    assert [o.created for o in ok] == [True, True, False, False, True]
    assert isinstance(outcomes[1], InvalidInput)
    assert outcomes[1].field == "gpus"
    assert isinstance(outcomes[2], NotFound)
    assert outcomes[2].field == "project"
    assert isinstance(outcomes[3], Submitted)
    assert isinstance(outcomes[4], Submitted)
    assert outcomes[4].job.id == outcomes[3].job.id
    assert isinstance(outcomes[5], Submitted)
    assert outcomes[5].job.id == stored.job.id
    assert isinstance(outcomes[6], Submitted)
    assert (outcomes[6].project, outcomes[6].user) == ("eves", "eve")
    with db.read() as s:
        assert s.query(Job).count() == 4  # the stored one and three new
        assert s.query(JobEvent).count() == 4  # each with its one submission event
