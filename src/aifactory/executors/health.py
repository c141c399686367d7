"""Node health probes and node control: what the health check asks, and how a drain reaches the
executor.

A `HealthProbe` looks at the nodes it knows and returns one `Checkup` per node (the problem it
found, or none); control.node_health decides what a checkup does to a node (domain.node_health).
Probes do I/O and may be slow: they run outside any database session.

The local executor's node has two probes, joined by `AllOf`:
- `DiskSpace`: the jobs directory's free space below a threshold (jobs write there: a full
  disk fails every job placed on the node);
- `NvmlHealth`: NVML's view of each GPU — a GPU that cannot be reached (fallen off the bus),
  a failed row remapping, and XID errors that are the hardware's, not a job's. An XID is
  remembered until this process restarts (after the repair): one event is enough to stop
  trusting the GPU.

`NodeControl` passes an operator's drain to the executor: on Slurm `scontrol update` (see
executors.slurm.nodes), on the local executor nothing (the facility places all its work).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from aifactory.domain.node_health import Checkup

log = logging.getLogger("aifactory.health")
GB = 1000**3
# XIDs a job causes (its own faults), not the GPU: 13 graphics engine exception, 31 MMU fault,
# 43 channel reset, 45 preemptive cleanup (NVIDIA's XID catalogue).
JOB_XIDS = frozenset({13, 31, 43, 45})


class HealthProbe(Protocol):
    def check(self) -> list[Checkup]: ...


class NodeControl(Protocol):
    def drain(self, node_id: str, reason: str) -> None: ...

    def resume(self, node_id: str) -> None: ...


class FacilityOnly:
    """Node control where the facility alone places work (the local executor): the database
    drain is the whole of it."""

    def drain(self, node_id: str, reason: str) -> None:
        del node_id, reason

    def resume(self, node_id: str) -> None:
        del node_id


class DiskSpace:
    """Fails when `path` (the jobs directory) has less than `min_free_bytes` free."""

    def __init__(self, node_id: str, path: Path, min_free_bytes: int) -> None:
        self.node_id = node_id
        self.path = path
        self.min_free_bytes = min_free_bytes

    def check(self) -> list[Checkup]:
        try:
            free = shutil.disk_usage(self.path).free
        except OSError as exc:
            return [Checkup(self.node_id, f"jobs dir {self.path} cannot be read: {exc.strerror}")]
        if free >= self.min_free_bytes:
            return [Checkup(self.node_id)]
        # Stable wording (no current figure): a drain's reason changes only when the cause does.
        limit = f"{self.min_free_bytes / GB:.3g} GB"
        return [Checkup(self.node_id, f"disk: jobs dir {self.path} has less than {limit} free")]


class NvmlHealth:
    """NVML's view of this node's GPUs; a node without NVML (or GPUs) always passes."""

    def __init__(self, node_id: str, uuids: Sequence[str]) -> None:
        self.node_id = node_id
        self.uuids = list(uuids)
        self._nvml: Any = None
        self._events: Any = None
        self._xids: set[tuple[str, int]] = set()  # (GPU, XID) seen since this process started

    def check(self) -> list[Checkup]:
        if not self.uuids or not self._ready():
            return [Checkup(self.node_id)]
        problems = [p for uuid in self.uuids if (p := self._gpu_problem(uuid))]
        self._read_xids()
        problems += [f"GPU {uuid}: XID {xid}" for uuid, xid in sorted(self._xids)]
        return [Checkup(self.node_id, "; ".join(problems) if problems else None)]

    def _ready(self) -> bool:
        if self._nvml is not None:
            return True
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:
            return False
        self._nvml = pynvml
        self._events = self._xid_events(pynvml)
        return True

    def _xid_events(self, nv: Any) -> Any:
        """An event set for every GPU's critical XIDs, or None where the driver offers none."""
        try:
            events = nv.nvmlEventSetCreate()
            for uuid in self.uuids:
                handle = nv.nvmlDeviceGetHandleByUUID(uuid)
                nv.nvmlDeviceRegisterEvents(handle, nv.nvmlEventTypeXidCriticalError, events)
        except Exception:
            log.info("NVML: no XID events on this node; GPUs are checked without them")
            return None
        return events

    def _gpu_problem(self, uuid: str) -> str | None:
        nv = self._nvml
        try:
            handle = nv.nvmlDeviceGetHandleByUUID(uuid)
            nv.nvmlDeviceGetMemoryInfo(handle)  # a GPU fallen off the bus fails here
        except Exception as exc:
            return f"GPU {uuid} cannot be reached: {exc}"
        try:
            *_, failed = nv.nvmlDeviceGetRemappedRows(handle)
        except Exception:
            return None  # before Ampere: no row remapping to fail
        return f"GPU {uuid}: row remapping failed" if failed else None

    def _read_xids(self) -> None:
        nv = self._nvml
        if self._events is None:
            return
        while True:
            try:
                event = nv.nvmlEventSetWait_v2(self._events, 0)
            except Exception:
                return  # NVML_ERROR_TIMEOUT: no event waiting
            xid = int(event.eventData)
            if xid not in JOB_XIDS:
                self._xids.add((_text(nv.nvmlDeviceGetUUID(event.device)), xid))


class AllOf:
    """Several probes of the same nodes: a node fails with every problem any of them found."""

    def __init__(self, *probes: HealthProbe) -> None:
        self.probes = probes

    def check(self) -> list[Checkup]:
        problems: dict[str, list[str]] = {}
        for probe in self.probes:
            for checkup in probe.check():
                found = problems.setdefault(checkup.node_id, [])
                if checkup.problem is not None:
                    found.append(checkup.problem)
        return [Checkup(node, "; ".join(p) if p else None) for node, p in problems.items()]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
