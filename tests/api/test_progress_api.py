"""A job's training progress over HTTP: read from the progress file the facility keeps in the
job's home, with what each preemption lost, seen only by those who may read the job."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aifactory.client import ApiError
from aifactory.services.progress import read_tail
from aifactory.store.models import JobEvent
from tests.api.helpers import Tenants
from tests.conftest import LiveServer

T0 = 1_767_000_000.0


def progress_file(live_server: LiveServer, job_id: int, *records: dict[str, object]) -> Path:
    assert live_server.state.jobs_dir is not None
    path = live_server.state.jobs_dir / str(job_id) / "work" / "progress.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in records]
    path.write_text("\n".join([*lines, '{"at": 9, "event": "tra']))  # a line being written
    return path


def events(live_server: LiveServer, job_id: int, *changes: tuple[float, str, str]) -> None:
    with live_server.db.session() as session:
        for at, before, after in changes:
            session.add(
                JobEvent(job_id=job_id, at=at, from_state=before, to_state=after, actor="test")
            )


def test_progress_has_the_latest_figures_curves_and_lost_gpu_seconds(
    live_server: LiveServer, tenants: Tenants
) -> None:
    alice = tenants.as_("alice")
    job = alice.submit(["true"], project="proj-a", gpus=2)
    progress_file(
        live_server,
        job["id"],
        {"at": T0 + 10, "attempt": 1, "event": "train", "step": 10, "loss": 4.0,
         "tokens_per_s": 1200.5, "gpu_count": 2},
        {"at": T0 + 20, "attempt": 1, "event": "checkpoint", "step": 10},
        {"at": T0 + 25, "attempt": 1, "event": "eval", "step": 10, "eval_loss": 4.1,
         "eval_ppl": 60.3},
        {"at": T0 + 40, "attempt": 2, "event": "resume", "step": 10},
        {"at": T0 + 50, "attempt": 2, "event": "train", "step": 20, "loss": 3.5},
    )  # fmt: skip
    events(
        live_server,
        job["id"],
        (T0 + 1, "ADMITTED", "RUNNING"),
        (T0 + 30, "RUNNING", "PREEMPTED"),
        (T0 + 38, "ADMITTED", "RUNNING"),
    )

    found = alice.progress(job["id"])

    assert (found["records"], found["truncated"]) == (5, False)
    latest = found["latest"]
    assert (latest["step"], latest["loss"], latest["tokens_per_s"]) == (20, 3.5, 1200.5)
    assert (latest["eval_ppl"], latest["attempt"], latest["checkpoint_step"]) == (60.3, 2, 10)
    assert found["train_loss"] == [[10.0, 4.0], [20.0, 3.5]]
    assert found["eval_loss"] == [[10.0, 4.1]]
    assert [r["event"] for r in found["recent"]] == [
        "train",
        "checkpoint",
        "eval",
        "resume",
        "train",
    ]
    (cut,) = found["preemptions"]
    assert (cut["gpus"], cut["checkpoint_step"], cut["lost_gpu_s"]) == (2, 10, 20.0)  # 10 s × 2
    assert found["lost_gpu_s"] == 20.0
    assert found["checkpoint_dir"] == str(
        live_server.state.jobs_dir / str(job["id"]) / "work" / "checkpoints"
    )
    assert len(alice.progress(job["id"], points=2)["train_loss"]) == 2


def test_a_job_that_reported_nothing_has_no_latest_figures(
    live_server: LiveServer, tenants: Tenants
) -> None:
    job = tenants.as_("alice").submit(["true"], project="proj-a")
    found = tenants.as_("alice").progress(job["id"])
    assert (found["latest"], found["records"], found["preemptions"]) == (None, 0, [])


def test_another_projects_job_is_not_found(live_server: LiveServer, tenants: Tenants) -> None:
    job = tenants.as_("alice").submit(["true"], project="proj-a")
    progress_file(live_server, job["id"], {"at": T0, "event": "train", "step": 1, "loss": 2.0})
    assert tenants.as_("vera").progress(job["id"])["latest"]["loss"] == 2.0  # a viewer may
    with pytest.raises(ApiError) as refused:
        tenants.as_("bob").progress(job["id"])
    assert refused.value.status == 404


def test_a_linked_progress_file_is_not_followed(live_server: LiveServer, tenants: Tenants) -> None:
    theirs = tenants.as_("bob").submit(["true"], project="proj-b")
    secret = progress_file(live_server, theirs["id"], {"at": T0, "event": "train", "loss": 1.0})
    mine = tenants.as_("alice").submit(["true"], project="proj-a")
    assert live_server.state.jobs_dir is not None
    home = live_server.state.jobs_dir / str(mine["id"]) / "work"
    home.mkdir(parents=True)
    (home / "progress.jsonl").symlink_to(secret)
    assert tenants.as_("alice").progress(mine["id"])["latest"] is None


def test_a_pipe_in_place_of_the_progress_file_is_not_waited_on(tmp_path: Path) -> None:
    """A job could make its progress file a named pipe: reading it must not block a thread."""
    pipe = tmp_path / "progress.jsonl"
    os.mkfifo(pipe)
    assert read_tail(pipe) == ("", False)
    (tmp_path / "plain.jsonl").write_text('{"event": "train", "at": 1.0}\n')
    assert read_tail(tmp_path / "plain.jsonl") == ('{"event": "train", "at": 1.0}\n', False)
