"""Text from a trained byte-level GPT: one token is one byte, so a prompt's tokens are its UTF-8
bytes and what comes out is decoded as it comes (a character split over two tokens is held back
until it is whole).

Sampling is the usual: temperature (0: the most likely byte, always the same text), nucleus
(top_p), a seed for repeatable runs, stop strings, and a cap on new tokens. The context is the
model's block: a longer prompt keeps its last `block_size` bytes.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from aifactory.recipes.dutch_gpt import checkpoint
from aifactory.recipes.dutch_gpt.config import RecipeConfig
from aifactory.recipes.dutch_gpt.model import GPT


@dataclass(frozen=True, slots=True)
class Sampling:
    max_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: Sequence[str] = field(default_factory=tuple)


@dataclass(slots=True)
class Generated:
    """What one request produced so far: its text and why it ended ('length' or 'stop')."""

    prompt_tokens: int
    completion_tokens: int = 0
    finish_reason: str | None = None


class Generator:
    def __init__(self, model: GPT, *, device: str = "cpu") -> None:
        self.model = model.eval()
        self.device = torch.device(device)
        self.block_size = model.cfg.block_size

    @classmethod
    def from_checkpoint(cls, source: Path, *, device: str = "cpu") -> Generator:
        """A generator over the weights in `source` (a checkpoint file, or the newest in a
        folder: a finished recipe job's checkpoints)."""
        saved = checkpoint.resolve(source)
        model = GPT(RecipeConfig.from_dict(saved["config"]).model)
        model.load_state_dict(saved["model"])
        return cls(model.to(device), device=device)

    def stream(self, prompt: str, sampling: Sampling, done: Generated) -> Iterator[str]:
        """The completion of `prompt`, piece by piece; `done` counts tokens and says why it
        ended once the iterator is exhausted."""
        context = list(prompt.encode("utf-8"))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        generator = torch.Generator(device="cpu")
        if sampling.seed is not None:
            generator.manual_seed(sampling.seed)
        text = ""
        held = 0  # characters not yet given out: they may begin a stop string
        longest_stop = max((len(s) for s in sampling.stop), default=0)
        with torch.no_grad():
            while done.completion_tokens < sampling.max_tokens:
                token = self._next(context, sampling, generator)
                context.append(token)
                done.completion_tokens += 1
                text += decoder.decode(bytes([token]))
                stopped = _stopped(text, sampling.stop)
                if stopped is not None:
                    done.finish_reason = "stop"
                    if stopped > held:
                        yield text[held:stopped]
                    return
                safe = len(text) - max(0, longest_stop - 1)
                if safe > held:
                    yield text[held:safe]
                    held = safe
        text += decoder.decode(b"", final=True)
        if len(text) > held:
            yield text[held:]
        done.finish_reason = "length"

    def _next(self, context: list[int], sampling: Sampling, generator: torch.Generator) -> int:
        window = torch.tensor([context[-self.block_size :]], device=self.device)
        logits = self.model(window)[0, -1].float().cpu()
        if sampling.temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / sampling.temperature, dim=-1)
        if sampling.top_p < 1.0:
            ordered, index = torch.sort(probs, descending=True)
            keep = torch.cumsum(ordered, dim=-1) - ordered < sampling.top_p
            probs = torch.zeros_like(probs).scatter(0, index[keep], ordered[keep])
        return int(torch.multinomial(probs, 1, generator=generator))


def prompt_tokens(prompt: str) -> int:
    return len(prompt.encode("utf-8"))


def _stopped(text: str, stops: Sequence[str]) -> int | None:
    """Where the first stop string begins in `text`, if one is there."""
    found = [text.find(s) for s in stops if s and s in text]
    return min(found) if found else None
