"""A job in a ready Python environment (software.envbuild): the sandbox it is given, for every
executor that runs bubblewrap (the local supervisor, a Slurm batch script).

The environment is mounted read-only at its own path (its scripts name it), with its `bin/`
first on PATH and VIRTUAL_ENV set; the interpreter it was made from comes in too where the
sandbox does not have it yet. Only an environment whose marker (`aifactory-env.json`, written
last) is there is whole: a job never runs in one half built.

The facility's own package (its recipes: `python -m aifactory.recipes.dutch_gpt`) is read-only
at `RECIPES`, last on PYTHONPATH, so a recipe runs on the environment's PyTorch; nothing else of
the facility's Python is on the job's path.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import aifactory
from aifactory.executors.sandbox.paths import inside
from aifactory.executors.sandbox.spec import Access, Mount, SandboxSpec

ENV_MARKER = "aifactory-env.json"  # an environment's record, written last: it is whole
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
RECIPES = "/opt/aifactory/lib"  # in the sandbox: the facility's package, as `aifactory`
PACKAGE = str(Path(aifactory.__file__).resolve().parent)


def marker(env_dir: str) -> dict[str, Any] | None:
    """The environment's record, or None when it is not whole (or not there)."""
    try:
        found = json.loads((Path(env_dir) / ENV_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def in_environment(spec: SandboxSpec, env_dir: str, record: dict[str, Any]) -> SandboxSpec:
    """`spec`'s world with the environment (`record`: its marker) in it."""
    mounts = [Mount(env_dir, env_dir, Access.READ, "environment")]
    base_prefix = str(record.get("base_prefix") or "")
    if base_prefix and not any(inside(base_prefix, m.target) for m in spec.software):
        mounts.append(Mount(base_prefix, base_prefix, Access.READ, "environment's interpreter"))
    mounts.append(Mount(PACKAGE, f"{RECIPES}/aifactory", Access.READ))
    path = f"{env_dir}/bin:{spec.env.get('PATH', DEFAULT_PATH)}"
    python_path = ":".join(p for p in (spec.env.get("PYTHONPATH"), RECIPES) if p)
    env = {**spec.env, "PATH": path, "VIRTUAL_ENV": env_dir, "PYTHONPATH": python_path}
    return replace(spec, software=(*spec.software, *mounts), env=env)
