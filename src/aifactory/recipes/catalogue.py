"""The recipes catalogue: named workloads that expand to an ordinary job spec.

`aifactory submit --recipe NAME [--config CONFIG] [--gpus N] [--from JOB_OR_PATH]` asks `expand`
for the job's spec (the body of `POST /jobs`, shown by `--dry-run`) and submits it like any other:
nothing about a recipe job is special to the facility. A recipe names the command (the
recipe's module, under torchrun with more than one GPU), the datasets it reads and a config's
defaults (GPUs, CPUs, memory, time limit); flags given on the command line win over them.

Pure and light: no torch here (the recipe's own code, `recipes.dutch_gpt`, needs it; the CLI
and the facility never import that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODULE = "aifactory.recipes.dutch_gpt"
DATASETS = ("dutch-books", "dutch-eval")


@dataclass(frozen=True, slots=True)
class Config:
    name: str
    gpus: int
    cpus: int
    memory_mb: int
    time_limit_s: int
    about: str


@dataclass(frozen=True, slots=True)
class Recipe:
    name: str
    kind: str  # the recipe module's first argument: pretrain | finetune
    about: str
    needs_from: bool = False  # fine-tuning starts from a checkpoint


CONFIGS: dict[str, Config] = {
    s.name: s
    for s in (
        # tiny runs on a CPU: no GPU asked, so it runs on any facility (--gpus 1 to use one)
        Config("tiny", 0, 1, 2_048, 30 * 60, "~0.1M parameters: seconds on one CPU"),
        Config("small", 1, 8, 65_536, 3 * 3600, "~85M parameters (GPT-2 small): about an hour"),
        Config("medium", 1, 16, 131_072, 12 * 3600, "~300M parameters (GPT-2 medium): hours"),
    )
}
RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "dutch-gpt-pretrain",
            "pretrain",
            "a byte-level GPT pretrained on public-domain Dutch books, evaluated on UD sentences",
        ),
        Recipe(
            "dutch-gpt-finetune",
            "finetune",
            "fine-tune a pretrained dutch-gpt checkpoint on UD dev sentences (--from)",
            needs_from=True,
        ),
    )
}


class UnknownRecipe(ValueError):
    """A recipe, config or option the catalogue does not have; the message says which."""


@dataclass(frozen=True, slots=True)
class Overrides:
    """What the user gave on the command line; None: the recipe's default."""

    gpus: int | None = None
    cpus: int | None = None
    memory_mb: int | None = None
    time_limit_s: int | None = None
    name: str | None = None
    start_from: str | None = None  # finetune: a checkpoint file or directory on the facility
    python: str = "python"


def expand(recipe: str, config: str = "tiny", given: Overrides | None = None) -> dict[str, Any]:
    """The job spec (a `POST /jobs` body, less project and priority) for `recipe` in `config`."""
    found = _recipe(recipe)
    defaults = _config(config)
    given = given or Overrides()
    if found.needs_from and not given.start_from:
        raise UnknownRecipe(f"{recipe} starts from a checkpoint: give --from JOB_OR_CHECKPOINT")
    if not found.needs_from and given.start_from:
        raise UnknownRecipe(f"{recipe} starts from scratch: --from is for dutch-gpt-finetune")
    gpus = defaults.gpus if given.gpus is None else given.gpus
    return {
        "name": given.name or f"{recipe}-{config}",
        "command": command(found, config, gpus, start_from=given.start_from, python=given.python),
        "gpus": gpus,
        "nodes": 1,
        "cpus": given.cpus or defaults.cpus,
        "memory_mb": given.memory_mb or defaults.memory_mb,
        "time_limit_s": given.time_limit_s or defaults.time_limit_s,
        "preemptible": True,  # it checkpoints on SIGTERM and resumes: preemption costs little
        "datasets": list(DATASETS),
    }


def command(
    recipe: Recipe, config: str, gpus: int, *, start_from: str | None, python: str = "python"
) -> list[str]:
    """The recipe's command line: one process, or one per GPU under torchrun."""
    args = [recipe.kind, "--config", config]
    if start_from:
        args += ["--from", start_from]
    if gpus <= 1:
        return [python, "-m", MODULE, *args]
    # torchrun is torch.distributed.run: the module form runs under the interpreter given
    launcher = ["torchrun"] if python == "python" else [python, "-m", "torch.distributed.run"]
    return [*launcher, "--standalone", f"--nproc-per-node={gpus}", "-m", MODULE, *args]


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise UnknownRecipe(f"no recipe {name!r}; there are {', '.join(RECIPES)}")
    return RECIPES[name]


def _config(name: str) -> Config:
    if name not in CONFIGS:
        raise UnknownRecipe(f"no config {name!r}; there are {', '.join(CONFIGS)}")
    return CONFIGS[name]
