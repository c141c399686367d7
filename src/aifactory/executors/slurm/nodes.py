"""Slurm's nodes for the health check and for drains: Slurm's own state is the node's health,
and an operator's drain is Slurm's drain.

Health: a node Slurm took out of service (DOWN, DRAIN, FAIL) fails, with Slurm's state and
reason as the problem — Slurm already places nothing there, the facility only shows why. A node
merely not responding for now (`idle*`: also just after a resume, until slurmd answers a ping)
or powered down to save energy does not: Slurm marks it DOWN itself if it stays away, and the
inventory offers no node that is not `usable` meanwhile. Drain and resume map to
`scontrol update nodename=X state=drain reason=…` and `state=resume`.
"""

from __future__ import annotations

from aifactory.domain.node_health import Checkup
from aifactory.executors.slurm.commands import SlurmClient, SlurmError
from aifactory.executors.slurm.parse import SlurmNode

FAILING_FLAGS = frozenset({"DRAIN", "FAIL"})
# scontrol's answer to RESUME on a node that is not drained or down: nothing to undo.
_NOT_DRAINED = "Invalid node state specified"


class SlurmNodes:
    def __init__(self, client: SlurmClient, partition: str | None = None) -> None:
        self.client = client
        self.partition = partition

    def check(self) -> list[Checkup]:
        return [
            Checkup(node.name, problem_of(node) if failing(node) else None)
            for node in self.client.nodes()
            if self.partition is None or self.partition in node.partitions
        ]

    def drain(self, node_id: str, reason: str) -> None:
        self.client.update_node(node_id, state="DRAIN", reason=reason)

    def resume(self, node_id: str) -> None:
        try:
            self.client.update_node(node_id, state="RESUME")
        except SlurmError as exc:
            if _NOT_DRAINED not in exc.stderr:
                raise


def failing(node: SlurmNode) -> bool:
    return node.state == "DOWN" or bool(node.flags & FAILING_FLAGS)


def problem_of(node: SlurmNode) -> str:
    """`Slurm: DOWN+NOT_RESPONDING (Not responding)`: what sinfo -R would say."""
    state = "+".join([node.state, *sorted(node.flags)])
    return f"Slurm: {state}" + (f" ({node.reason})" if node.reason else "")
