from __future__ import annotations

import math

import torch

from aifactory.recipes.dutch_gpt.config import CONFIGS, VOCAB_SIZE, ModelConfig
from aifactory.recipes.dutch_gpt.model import GPT, flops_per_token, loss_of, parameter_count

SHAPE = ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=16)


def test_logits_have_one_row_per_position_over_256_bytes() -> None:
    model = GPT(SHAPE)
    idx = torch.randint(VOCAB_SIZE, (3, 16))
    assert model(idx).shape == (3, 16, VOCAB_SIZE)
    assert model(idx[:, :5]).shape == (3, 5, VOCAB_SIZE)


def test_a_position_never_sees_the_bytes_after_it() -> None:
    torch.manual_seed(0)
    model = GPT(SHAPE).eval()
    idx = torch.randint(VOCAB_SIZE, (1, 16))
    changed = idx.clone()
    changed[0, 10:] = (changed[0, 10:] + 1) % VOCAB_SIZE
    a, b = model(idx), model(changed)
    assert torch.allclose(a[0, :10], b[0, :10], atol=1e-6)
    assert not torch.allclose(a[0, 10:], b[0, 10:])


def test_an_untrained_model_guesses_about_uniformly() -> None:
    torch.manual_seed(0)
    idx, targets = torch.randint(VOCAB_SIZE, (2, 4, 16))
    loss = loss_of(GPT(SHAPE)(idx), targets).item()
    assert abs(loss - math.log(VOCAB_SIZE)) < 0.3


def test_sizes_and_flops_per_token() -> None:
    tiny = CONFIGS["tiny"].model
    n = parameter_count(GPT(tiny))
    assert 100_000 < n < 500_000  # the tied embedding counted once
    small = CONFIGS["small"].model
    d, layers, t = small.n_embd, small.n_layer, small.block_size
    n_small = 12 * layers * d * d + VOCAB_SIZE * d + t * d + (2 * layers + 1) * d
    assert flops_per_token(small, n_small) == 6 * (n_small - t * d) + 12 * layers * d * t
    assert 80e6 < n_small < 110e6
