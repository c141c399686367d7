"""Software benchmark: what a Python environment and an image add to a job's start, and what an
environment's build costs cold and cached.

The real local executor with its real supervisors, in one run, one job at a time, the kinds
interleaved:

- bare: a job in the sandbox, as every job (bubblewrap, the project's identity, its cgroup);
- environment: the same job in a ready (cached) environment (its mounts, PATH);
- image: the same job in an imported (cached) busybox image, run by the OCI runtime (runc).

Each runs `sh -c ': > "$HOME/ran"'`; the start is from `executor.start()` (what the control
loop calls once it committed the job ADMITTED) to that file's modification time, the job's first
instruction, on the host's clock. Python's own start-up in the environment is timed alike
(`python -c` writing the file) against the facility's Python.

Builds: a one-package environment from a real PEP 503 registry served on 127.0.0.1 (the
package written by hand, tests.software.registry): cold (venv + pip + report, in the sandbox)
and cached (the same key asked again: the finished environment is found).

    .venv/bin/python benchmarks/software_start.py [--starts 40] [--builds 5]

Prints a table and writes benchmarks/results/software_start.json. Run as root with runc and
tini installed (scripts/install-system-deps.sh --run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.software.imagetars import busybox_layer, oci_archive  # noqa: E402
from tests.software.registry import make_wheel, publish, serve  # noqa: E402

from aifactory.executors.base import Attempt, Launch, NodeSlice, Phase  # noqa: E402
from aifactory.executors.local.executor import LocalConfig, LocalExecutor  # noqa: E402
from aifactory.executors.sandbox.identity import Identities, IdentityConfig  # noqa: E402
from aifactory.executors.sandbox.software import host_software  # noqa: E402
from aifactory.software import envbuild, layout  # noqa: E402
from aifactory.software.images import import_image  # noqa: E402
from benchmarks.sandbox_start import summary  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "software_start.json"
TOUCH = ["/bin/sh", "-c", ': > "$HOME/ran"']
PY_TOUCH = "import os; open(os.environ['HOME'] + '/ran', 'w').close()"


def launch(job_id: int, command: list[str], **software: str) -> Launch:
    return Launch(
        Attempt(job_id, 1),
        command,
        {},
        None,
        60,
        {"node": NodeSlice([], [0], 512)},
        project="bench",
        project_id=1,
        **software,
    )


def start_ms(made: LocalExecutor, job: Launch) -> float:
    """ms from start() to the job's first instruction (its file's mtime)."""
    before = time.time_ns()
    made.start(job)
    while made.poll([job.attempt])[job.attempt].phase is not Phase.EXITED:
        time.sleep(0.002)
    ran = made.work(job.job_id) / "ran"
    assert ran.exists(), made.log_path(job.job_id).read_text()
    return (ran.stat().st_mtime_ns - before) / 1e6


def builds(software_dir: Path, url: str, rounds: int) -> dict[str, list[float]]:
    """Seconds per build of a one-package environment: cold (a new key each round) and cached
    (the same key again)."""
    identity = Identities(IdentityConfig.for_this_process()).of(0, "builder")
    software = host_software()
    interpreter = envbuild.find_python(None)
    found: dict[str, list[float]] = {"cold": [], "cached": []}
    for n in range(rounds):
        env_dir = layout.environment_dir(software_dir, f"bench{n}")
        for kind in ("cold", "cached"):
            began = time.perf_counter()
            envbuild.build_environment(
                env_dir,
                ["aifprobe==1.0"],
                interpreter=interpreter,
                index=url,
                identity=identity,
                software=software,
                log=layout.build_log(software_dir, f"bench{n}"),
            )
            found[kind].append(time.perf_counter() - began)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=40)
    parser.add_argument("--builds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aifactory-bench-", dir="/var/tmp") as scratch:
        root = Path(scratch)
        root.chmod(0o755)
        registry = root / "registry"
        files = {"aifprobe/__init__.py": 'VERSION = "1.0"\n'}
        publish(registry, make_wheel(registry / "files", "aifprobe", "1.0", files))
        software_dir = root / "software"
        with serve(registry) as url:
            built = builds(software_dir, url, args.builds)
        starts = start_latencies(root, software_dir, args.starts)
    result = figures(args, starts, built)
    print_table(result)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


def start_latencies(root: Path, software_dir: Path, starts: int) -> dict[str, list[float]]:
    tar = root / "busybox.tar"
    oci_archive(tar, [busybox_layer()], ref="busybox:bench")
    image = import_image(layout.images_dir(software_dir), tar)
    env_dir = str(layout.environment_dir(software_dir, "bench0"))
    made = LocalExecutor(LocalConfig(jobs_dir=root / "jobs", virtual_gpus=0, cpus=1))
    kinds: dict[str, tuple[list[str], dict[str, str]]] = {
        "bare": (TOUCH, {}),
        "environment": (TOUCH, {"environment": env_dir}),
        "image": (TOUCH, {"image": str(image.dir)}),
        "python, facility's": (["python3", "-c", PY_TOUCH], {}),
        "python, environment's": (["python", "-c", PY_TOUCH], {"environment": env_dir}),
    }
    found: dict[str, list[float]] = {kind: [] for kind in kinds}
    job_id = 0
    for n in range(starts):
        order = list(kinds) if n % 2 == 0 else list(reversed(kinds))
        for kind in order:
            job_id += 1
            command, software = kinds[kind]
            found[kind].append(start_ms(made, launch(job_id, command, **software)))
    return found


def figures(
    args: argparse.Namespace, starts: dict[str, list[float]], built: dict[str, list[float]]
) -> dict[str, Any]:
    start = {kind: summary(values) for kind, values in starts.items()}
    bare = start["bare"]["p50"]
    return {
        "benchmark": "software_start",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}, python {platform.python_version()}",
        "start_ms": start,
        "added_ms": {
            "environment": start["environment"]["p50"] - bare,
            "image": start["image"]["p50"] - bare,
            "python in environment": start["python, environment's"]["p50"]
            - start["python, facility's"]["p50"],
        },
        "build_s": {kind: summary(values) for kind, values in built.items()},
        "starts": args.starts,
        "builds": args.builds,
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"{'start → first instruction (ms)':<34}{'p50':>10}{'p95':>10}")
    for kind, block in result["start_ms"].items():
        print(f"{kind:<34}{block['p50']:>10.1f}{block['p95']:>10.1f}")
    for kind, added in result["added_ms"].items():
        print(f"{'added by ' + kind:<34}{added:>10.1f}")
    print(f"{'environment build (s)':<34}{'p50':>10}{'p95':>10}")
    for kind, block in result["build_s"].items():
        print(f"{kind:<34}{block['p50']:>10.3f}{block['p95']:>10.3f}")


if __name__ == "__main__":
    main()
