"""The scheduling policy: a pure function from a snapshot of the facility to decisions.

`schedule(snapshot, policy, now)` is called by the live control loop and (issue #3) by the
simulator. It reads no clock, no database and no executor, and knows only what a real facility
knows: specs, user time limits, submit times and current usage — never true runtimes.
"""

from aifactory.scheduler.decisions import Decision, Hold, Preempt, Start
from aifactory.scheduler.policy import DEFAULT, NAMED, Policy, policy_named, schedule
from aifactory.scheduler.snapshot import NodeView, PendingJob, RunningJob, Snapshot

__all__ = [
    "DEFAULT",
    "NAMED",
    "Decision",
    "Hold",
    "NodeView",
    "PendingJob",
    "Policy",
    "Preempt",
    "RunningJob",
    "Snapshot",
    "Start",
    "policy_named",
    "schedule",
]
