"""Building a run: from a checkpoint when the job's folder has one (a resumed attempt), else
fresh (pretrain) or from `--from` (finetune). Returns the model, optimizer and counters ready for
the loop; the loop never asks where they came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from aifactory.recipes.dutch_gpt import checkpoint
from aifactory.recipes.dutch_gpt.config import RecipeConfig
from aifactory.recipes.dutch_gpt.model import GPT
from aifactory.recipes.dutch_gpt.run import JobEnv, RunSpec


@dataclass
class Start:
    kind: str
    config: RecipeConfig
    seed: int
    model: GPT
    optimizer: torch.optim.AdamW
    step: int
    tokens: int
    resumed: bool


def build(spec: RunSpec, env: JobEnv, device: torch.device) -> Start:
    saved = checkpoint.latest(env.checkpoint_dir)
    if saved is not None:
        return _resumed(saved, device)
    config = spec.config
    model_state = None
    if spec.kind == "finetune":
        if spec.init_from is None:
            raise ValueError("finetune needs --from: a checkpoint file or folder")
        init = checkpoint.resolve(spec.init_from)
        shape = RecipeConfig.from_dict(init["config"]).model
        config = RecipeConfig(config.name, shape, config.train)
        model_state = init["model"]
    torch.manual_seed(spec.seed)
    model = GPT(config.model)
    if model_state is not None:
        model.load_state_dict(model_state)
    model.to(device)
    return Start(
        spec.kind, config, spec.seed, model, _optimizer(model, config, device), 0, 0, False
    )


def _resumed(saved: dict[str, Any], device: torch.device) -> Start:
    config = RecipeConfig.from_dict(saved["config"])
    model = GPT(config.model)
    model.load_state_dict(saved["model"])
    model.to(device)
    optimizer = _optimizer(model, config, device)
    optimizer.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["rng"])
    return Start(
        saved["kind"], config, saved["seed"], model, optimizer, saved["step"], saved["tokens"], True
    )


def state_of(start: Start) -> dict[str, Any]:
    """What `_resumed` needs: everything that changes during a run plus what fixes it."""
    return {
        "kind": start.kind,
        "config": start.config.to_dict(),
        "seed": start.seed,
        "step": start.step,
        "tokens": start.tokens,
        "model": start.model.state_dict(),
        "optimizer": start.optimizer.state_dict(),
        "rng": torch.get_rng_state(),
    }


def _optimizer(model: nn.Module, config: RecipeConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on norms); fused kernels on a GPU."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.train.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=config.train.lr, betas=(0.9, 0.95), fused=fused)


def lr_at(kind: str, config: RecipeConfig, step: int) -> float:
    """Pretraining: linear warm-up, then cosine decay to `min_lr`. Fine-tuning: constant."""
    t = config.train
    if kind == "finetune":
        return t.finetune_lr
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    progress = min(1.0, (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps))
    return t.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (t.lr - t.min_lr)
