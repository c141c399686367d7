"""Text as byte streams, and the batches a step trains on.

Invariant: the batch of a step is a function of (seed, step, rank) only, never of what ran before,
so a run resumed from a checkpoint at step k trains on exactly the batches an unpreempted run
would have from step k on. Evaluation windows are fixed (the first ones of the held-out stream).

Files: pretraining reads every `*.txt` of the books dataset; fine-tuning reads the eval dataset's
`*-dev.txt`; evaluation reads its `*-test.txt`. `LICENSE*` files are never read as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

SEED_STRIDE = 1_000_003  # a prime: (seed, step, rank) → distinct generator seeds


@dataclass(frozen=True)
class Corpus:
    train: Tensor  # uint8 byte stream
    held_out: Tensor  # uint8 byte stream


def read_bytes(folder: Path, pattern: str) -> Tensor:
    """The files matching `pattern` under `folder`, in name order, joined by newlines."""
    files = sorted(p for p in folder.rglob(pattern) if not p.name.startswith("LICENSE"))
    if not files:
        raise FileNotFoundError(f"no {pattern} files under {folder}")
    data = b"\n".join(p.read_bytes() for p in files)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def load_corpus(kind: str, books: Path, eval_set: Path) -> Corpus:
    train = read_bytes(books, "*.txt") if kind == "pretrain" else read_bytes(eval_set, "*-dev.txt")
    return Corpus(train=train, held_out=read_bytes(eval_set, "*-test.txt"))


def batch_at(
    data: Tensor, *, seed: int, step: int, rank: int, batch_size: int, block_size: int
) -> tuple[Tensor, Tensor]:
    """Inputs and next-byte targets, (batch_size, block_size) each, as int64."""
    gen = torch.Generator().manual_seed((seed * SEED_STRIDE + step) * SEED_STRIDE + rank)
    starts = torch.randint(len(data) - block_size - 1, (batch_size,), generator=gen)
    return _windows(data, starts, block_size)


def eval_batches(
    data: Tensor, *, batches: int, batch_size: int, block_size: int
) -> list[tuple[Tensor, Tensor]]:
    """Consecutive windows from the start of the held-out stream, as many as fit (at most
    `batches * batch_size`)."""
    count = min(batches * batch_size, (len(data) - 1) // block_size)
    starts = torch.arange(count) * block_size
    return [
        _windows(data, chunk, block_size)
        for chunk in torch.split(starts, batch_size)
        if len(chunk) > 0
    ]


def _windows(data: Tensor, starts: Tensor, block_size: int) -> tuple[Tensor, Tensor]:
    index = starts[:, None] + torch.arange(block_size + 1)
    rows = data[index].long()
    return rows[:, :-1], rows[:, 1:]


def decode(ids: Tensor) -> str:
    return bytes(ids.to(torch.uint8).tolist()).decode("utf-8", errors="replace")
