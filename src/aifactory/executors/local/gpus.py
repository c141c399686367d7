"""GPU discovery, energy and utilisation readings through NVML (nvidia-ml-py).

NVML is optional at run time: on a machine without an NVIDIA driver `discover()` returns no GPUs
and the node offers CPUs only (or the virtual GPU slots an operator declares).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from aifactory.executors.local.sampling import MB, GpuReader, GpuReading, NoGpus

_VENDOR_WORDS = {"nvidia", "tesla", "geforce"}
_SERIES_WORDS = {"rtx", "gtx", "quadro"}


@dataclass(frozen=True, slots=True)
class Gpu:
    index: int
    uuid: str
    name: str
    memory_mb: int

    @property
    def model(self) -> str:
        return gpu_model_slug(self.name)


def gpu_model_slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' → 'h100'; 'NVIDIA GeForce RTX 4090' → 'rtx4090'."""
    words = [w for w in re.split(r"[\s\-_]+", name.lower()) if w and w not in _VENDOR_WORDS]
    if not words:
        return "unknown"
    if words[0] in _SERIES_WORDS and len(words) > 1:
        return words[0] + words[1]
    return words[0]


def discover() -> list[Gpu]:
    try:
        import pynvml
    except ImportError:  # pragma: no cover - nvidia-ml-py is a dependency
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        return [_describe(pynvml, i) for i in range(pynvml.nvmlDeviceGetCount())]
    finally:
        pynvml.nvmlShutdown()


def _describe(pynvml: object, index: int) -> Gpu:
    nv = pynvml
    handle = nv.nvmlDeviceGetHandleByIndex(index)  # type: ignore[attr-defined]
    name = nv.nvmlDeviceGetName(handle)  # type: ignore[attr-defined]
    uuid = nv.nvmlDeviceGetUUID(handle)  # type: ignore[attr-defined]
    memory = nv.nvmlDeviceGetMemoryInfo(handle)  # type: ignore[attr-defined]
    return Gpu(index, _text(uuid), _text(name), int(memory.total) // (1024 * 1024))


def energy_mj(uuids: list[str]) -> dict[str, int]:
    """Total energy each GPU has used since its driver loaded, in millijoules (Volta and newer)."""
    if not uuids:
        return {}
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return {}
    try:
        readings: dict[str, int] = {}
        for uuid in uuids:
            try:
                handle = pynvml.nvmlDeviceGetHandleByUUID(uuid)
                readings[uuid] = int(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
            except pynvml.NVMLError:
                continue
        return readings
    finally:
        pynvml.nvmlShutdown()


def reader(uuids: list[str]) -> GpuReader:
    """A reader of these GPUs for the attempt's life (NVML opened once, closed by `close`);
    one that reads nothing where NVML or the GPUs cannot be had."""
    if not uuids:
        return NoGpus()
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return NoGpus()
    handles = []
    for uuid in uuids:
        try:
            handles.append(pynvml.nvmlDeviceGetHandleByUUID(uuid))
        except pynvml.NVMLError:
            continue
    return NvmlReader(pynvml, handles)


class NvmlReader:
    """Utilisation and memory in use of some GPUs, from NVML (`nvml`: the pynvml module, or a
    stand-in for it in tests). A GPU that cannot be read at one instant is left out of it."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self.nvml = nvml
        self.handles = handles

    def read(self) -> list[GpuReading]:
        readings = []
        for handle in self.handles:
            try:
                busy = self.nvml.nvmlDeviceGetUtilizationRates(handle).gpu
                used = self.nvml.nvmlDeviceGetMemoryInfo(handle).used
            except self.nvml.NVMLError:
                continue
            readings.append(GpuReading(float(busy), int(used) / MB))
        return readings

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError:
            return


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


CONTROL_NODES = (
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
)


def device_nodes(uuids: list[str]) -> list[str]:
    """The device files a job given these GPUs opens: each one's /dev/nvidia<minor> and the
    driver's shared control nodes. Nothing for no GPUs (the sandbox then has no NVIDIA node)."""
    if not uuids:
        return []
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return []
    try:
        minors = [
            pynvml.nvmlDeviceGetMinorNumber(pynvml.nvmlDeviceGetHandleByUUID(uuid))
            for uuid in uuids
        ]
    except pynvml.NVMLError:
        return []
    finally:
        pynvml.nvmlShutdown()
    own = [f"/dev/nvidia{int(minor)}" for minor in minors]
    return [*own, *(node for node in CONTROL_NODES if os.path.exists(node))]
