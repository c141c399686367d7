"""One attempt's sandbox, from what its executor knows of it. Pure: values in, a spec out.

The paths a job is told (`AIFACTORY_CHECKPOINT_DIR`, its datasets' `AIFACTORY_DATASET_*`, its
working directory) are mounted at the same paths inside, so they stay true; /tmp is the
attempt's own directory on the host (not memory: big temporary files must not count as RAM).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aifactory.domain.jobs import Network
from aifactory.executors.sandbox.identity import Identity
from aifactory.executors.sandbox.paths import inside
from aifactory.executors.sandbox.software import Software
from aifactory.executors.sandbox.spec import (
    Access,
    Mount,
    SandboxSpec,
    facility_files,
    identity_env,
)


@dataclass(frozen=True, slots=True)
class JobPaths:
    work: str  # the job's own directory: HOME, default working directory, checkpoints
    tmp: str  # the attempt's /tmp, on the host
    working_dir: str | None = None  # the one the user asked for, if any


def job_sandbox(
    identity: Identity,
    software: Software,
    paths: JobPaths,
    *,
    datasets: Sequence[str] = (),
    inputs: Sequence[str] = (),
    devices: Sequence[Mount] = (),
    network: Network = Network.NONE,
    hostname: str = "aifactory",
    env: Mapping[str, str] | None = None,
    protected: Sequence[str] = (),
    workdir_roots: Sequence[str] = (),
) -> SandboxSpec:
    writable = [
        Mount(paths.work, paths.work, Access.WRITE, "job directory"),
        Mount(paths.tmp, "/tmp", Access.WRITE, "temporary directory"),
    ]
    cwd = os.path.normpath(paths.working_dir) if paths.working_dir else paths.work
    if not inside(cwd, paths.work):
        writable.append(Mount(cwd, cwd, Access.WRITE, "working directory", users=True))
    return SandboxSpec(
        identity=identity,
        software=software.for_network(network),
        symlinks=software.symlinks,
        writable=tuple(writable),
        datasets=(
            *(Mount(p, p, Access.READ, "dataset") for p in datasets),
            *(Mount(p, p, Access.READ, "input job's directory") for p in inputs),
        ),
        devices=tuple(devices),
        files=facility_files(identity, paths.work, hostname, network),
        network=network,
        hostname=hostname,
        cwd=cwd,
        env={**(env or {}), **identity_env(identity, paths.work)},
        protected=tuple(protected),
        workdir_roots=tuple(workdir_roots),
    )
