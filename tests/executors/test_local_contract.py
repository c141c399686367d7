"""What the local executor gives every job (docs/recipes.md): its checkpoint directory, made
before it starts and the same for every attempt, its progress file and the grace period."""

from __future__ import annotations

import json
from pathlib import Path

from aifactory.executors.base import Outcome
from aifactory.executors.local.executor import LocalExecutor
from tests.executors.jobs import launch, python, run_to_exit

# Each attempt notes what it was given, then leaves a checkpoint, finding the last one's.
JOB = """
import json, os, pathlib, sys
ckpt = pathlib.Path(os.environ["AIFACTORY_CHECKPOINT_DIR"])
seen = {k: v for k, v in os.environ.items() if k.startswith("AIFACTORY_")}
seen["found"] = sorted(p.name for p in ckpt.iterdir())
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(seen) + "\\n")
(ckpt / ("step-" + os.environ["AIFACTORY_ATTEMPT"])).write_text("weights")
"""


def test_every_attempt_gets_the_same_checkpoint_dir_progress_file_and_grace(
    executor: LocalExecutor, jobs_dir: Path, tmp_path: Path
) -> None:
    notes = executor.work(7) / "notes"
    for attempt in (1, 2):
        # the user's environment cannot move them
        job = launch(
            7,
            [*python(JOB), str(notes)],
            attempt=attempt,
            env={"AIFACTORY_CHECKPOINT_DIR": "/elsewhere"},
        )
        assert run_to_exit(executor, job).outcome is Outcome.SUCCEEDED

    first, second = (json.loads(n) for n in notes.read_text().splitlines())
    home = jobs_dir / "7" / "work"  # the job's own directory
    for seen in (first, second):
        assert seen["AIFACTORY_CHECKPOINT_DIR"] == str(home / "checkpoints")
        assert seen["AIFACTORY_PROGRESS_FILE"] == str(home / "progress.jsonl")
        assert seen["AIFACTORY_GRACE_S"] == "1"  # the executor's grace_s
    assert first["found"] == []  # made before the job started
    assert second["found"] == ["step-1"]  # and kept across the requeue
    assert (second["AIFACTORY_JOB_ID"], second["AIFACTORY_ATTEMPT"]) == ("7", "2")
