"""Named configurations, from `tiny` (CPU, seconds) to `medium` (one H100, hours).

A configuration is a model shape plus training settings. A checkpoint stores both, so a resumed
run keeps the shape and schedule it started with; command-line overrides (`--steps`, ...) apply
to a fresh run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

VOCAB_SIZE = 256  # one token per byte value


@dataclass(frozen=True)
class ModelConfig:
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int  # context length in bytes
    dropout: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int  # sequences per micro-batch, per process
    grad_accum: int  # micro-batches per step
    steps: int
    lr: float
    min_lr: float
    warmup_steps: int
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    checkpoint_every: int = 100
    eval_every: int = 100
    eval_batches: int = 8
    log_every: int = 10
    finetune_lr: float = 1e-4  # constant learning rate when fine-tuning

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RecipeConfig:
    name: str
    model: ModelConfig
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model.to_dict(), "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecipeConfig:
        return cls(data["name"], ModelConfig(**data["model"]), TrainConfig(**data["train"]))

    def with_overrides(self, **train: int | None) -> RecipeConfig:
        changes = {k: v for k, v in train.items() if v is not None}
        return dataclasses.replace(self, train=dataclasses.replace(self.train, **changes))


CONFIGS: dict[str, RecipeConfig] = {
    "tiny": RecipeConfig(  # ~0.12M parameters: a few hundred steps in seconds on a CPU
        "tiny",
        ModelConfig(n_layer=2, n_head=2, n_embd=64, block_size=64),
        TrainConfig(
            batch_size=16,
            grad_accum=1,
            steps=300,
            lr=3e-3,
            min_lr=3e-4,
            warmup_steps=20,
            checkpoint_every=50,
            eval_every=100,
            eval_batches=4,
            log_every=10,
            finetune_lr=1e-3,
        ),
    ),
    "small": RecipeConfig(  # ~85M parameters (GPT-2 small shape): one H100, about an hour
        "small",
        ModelConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024),
        TrainConfig(
            batch_size=32,
            grad_accum=2,
            steps=5000,
            lr=6e-4,
            min_lr=6e-5,
            warmup_steps=200,
            checkpoint_every=500,
            eval_every=250,
            eval_batches=16,
            log_every=10,
            finetune_lr=6e-5,
        ),
    ),
    "medium": RecipeConfig(  # ~300M parameters (GPT-2 medium shape): one H100, hours
        "medium",
        ModelConfig(n_layer=24, n_head=16, n_embd=1024, block_size=1024),
        TrainConfig(
            batch_size=16,
            grad_accum=4,
            steps=10000,
            lr=3e-4,
            min_lr=3e-5,
            warmup_steps=500,
            checkpoint_every=500,
            eval_every=500,
            eval_batches=16,
            log_every=10,
            finetune_lr=3e-5,
        ),
    ),
}
