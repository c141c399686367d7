"""`submit --wait`: follow a job as `srun` would — its state as it changes (on stderr, with
why it waits), then its output as it comes (on stdout) — until it ends."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from aifactory.cli.formats import printable
from aifactory.client.client import TERMINAL, Client

Json = dict[str, Any]
SHOWS_OUTPUT = frozenset({"RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED"})


def follow(
    api: Client,
    job_id: int,
    *,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    poll_s: float = 0.5,
) -> Json:
    """The job once it has ended and all of its output is printed."""
    said, offset = "", 0
    while True:
        job = api.job(job_id)
        line = state_line(job)
        if line != said:
            err.write(line + "\n")
            err.flush()
            said = line
        complete = job["state"] not in SHOWS_OUTPUT  # nothing to read yet
        if not complete:
            chunk = api.logs(job_id, offset=offset)
            out.write(chunk["text"])
            out.flush()
            offset, complete = chunk["offset"], chunk["complete"]
        if job["state"] in TERMINAL and complete:
            return job
        if job["state"] not in TERMINAL or not complete:
            time.sleep(poll_s)


def state_line(job: Json) -> str:
    """One line for where the job stands: why it waits, where it runs, how it ended."""
    said = f"job {job['id']} {job['state']}"
    queue = job.get("queue")
    if queue:
        return f"{said}: {printable(queue['reason'])}"
    if job["state"] == "RUNNING" and job.get("placement"):
        return f"{said} on {', '.join(sorted(job['placement']))}"
    if job["state"] in TERMINAL and job.get("state_reason"):
        return f"{said}: {printable(job['state_reason'])}"
    return said
