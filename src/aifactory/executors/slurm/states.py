"""Slurm's job states and what each means to the executor: pure data, no I/O.

Every state Slurm 22.05 names maps to the executor's Phase and, once the job has ended, its
Outcome. A job still in the queue (pending, held, requeued, configuring) is STARTING; COMPLETING
is still RUNNING, since its outcome is not known yet. An unknown state raises ValueError rather
than being guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping

from aifactory.executors.base import Outcome, Phase

# Every job state Slurm 22.05 names, with the executor's view of it.
JOB_STATES: Mapping[str, tuple[Phase, Outcome | None]] = {
    "PENDING": (Phase.STARTING, None),
    "REQUEUED": (Phase.STARTING, None),  # back in the queue, to run again
    "REQUEUE_HOLD": (Phase.STARTING, None),
    "REQUEUE_FED": (Phase.STARTING, None),
    "RESV_DEL_HOLD": (Phase.STARTING, None),
    "CONFIGURING": (Phase.STARTING, None),  # nodes allocated, being readied
    "RUNNING": (Phase.RUNNING, None),
    "COMPLETING": (Phase.RUNNING, None),  # processes ending, nodes cleaning up: no outcome yet
    "SUSPENDED": (Phase.RUNNING, None),
    "STOPPED": (Phase.RUNNING, None),
    "SIGNALING": (Phase.RUNNING, None),
    "STAGE_OUT": (Phase.RUNNING, None),
    "RESIZING": (Phase.RUNNING, None),
    "COMPLETED": (Phase.EXITED, Outcome.SUCCEEDED),
    "FAILED": (Phase.EXITED, Outcome.FAILED),
    "OUT_OF_MEMORY": (Phase.EXITED, Outcome.FAILED),
    "NODE_FAIL": (Phase.EXITED, Outcome.FAILED),
    "BOOT_FAIL": (Phase.EXITED, Outcome.FAILED),
    "LAUNCH_FAILED": (Phase.EXITED, Outcome.FAILED),
    "SPECIAL_EXIT": (Phase.EXITED, Outcome.FAILED),
    "TIMEOUT": (Phase.EXITED, Outcome.TIMEOUT),
    "DEADLINE": (Phase.EXITED, Outcome.TIMEOUT),
    "CANCELLED": (Phase.EXITED, Outcome.CANCELLED),
    "REVOKED": (Phase.EXITED, Outcome.CANCELLED),  # a federation sibling ran it instead
    "PREEMPTED": (Phase.EXITED, Outcome.PREEMPTED),
}
# squeue's and sinfo's two-letter codes, for completeness.
COMPACT_STATES = {
    "PD": "PENDING",
    "RQ": "REQUEUED",
    "RH": "REQUEUE_HOLD",
    "RF": "REQUEUE_FED",
    "RD": "RESV_DEL_HOLD",
    "CF": "CONFIGURING",
    "R": "RUNNING",
    "CG": "COMPLETING",
    "S": "SUSPENDED",
    "ST": "STOPPED",
    "SI": "SIGNALING",
    "SO": "STAGE_OUT",
    "RS": "RESIZING",
    "CD": "COMPLETED",
    "F": "FAILED",
    "OOM": "OUT_OF_MEMORY",
    "NF": "NODE_FAIL",
    "BF": "BOOT_FAIL",
    "SE": "SPECIAL_EXIT",
    "TO": "TIMEOUT",
    "DL": "DEADLINE",
    "CA": "CANCELLED",
    "RV": "REVOKED",
    "PR": "PREEMPTED",
}


def base_state(text: str) -> str:
    """`CANCELLED by 0` → CANCELLED; `CD` → COMPLETED; flags after `+` are dropped."""
    word = text.strip().split(" ", 1)[0].split("+", 1)[0]
    return COMPACT_STATES.get(word, word)


def job_phase(state: str) -> tuple[Phase, Outcome | None]:
    """A Slurm job state → the executor's phase and, once the job has ended, its outcome."""
    try:
        return JOB_STATES[base_state(state)]
    except KeyError:
        raise ValueError(f"unknown Slurm job state: {state!r}") from None
