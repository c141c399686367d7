"""The training loop: step, report, checkpoint, evaluate, stop on the signal.

One step: `grad_accum` micro-batches (`batch_at(seed, step, rank·grad_accum + micro)`), clip,
AdamW update. After each step, in this order: the train report (every `log_every` and the last
step), the stop check (all ranks agree, then checkpoint and return `preempted`), the interval
checkpoint, the evaluation. The step under way when SIGTERM arrives is finished and kept, so a
preemption loses nothing but the time to restart.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from aifactory.recipes.dutch_gpt import checkpoint
from aifactory.recipes.dutch_gpt.data import Corpus, batch_at, eval_batches, load_corpus
from aifactory.recipes.dutch_gpt.model import flops_per_token, loss_of, parameter_count
from aifactory.recipes.dutch_gpt.progress import Progress
from aifactory.recipes.dutch_gpt.run import JobEnv, RunSpec, StopFlag
from aifactory.recipes.dutch_gpt.setup import Start, build, lr_at, state_of

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense, per GPU


@dataclass(frozen=True)
class Result:
    step: int
    loss: float | None  # None when resumed from a run that had already finished
    eval_loss: float | None
    preempted: bool


@dataclass
class Loop:
    spec: RunSpec
    env: JobEnv
    run: Start
    corpus: Corpus
    device: torch.device
    forward: nn.Module  # the model as trained: maybe compiled, maybe DDP-wrapped
    progress: Progress
    flops_per_token: int

    @property
    def tokens_per_step(self) -> int:
        t, m = self.run.config.train, self.run.config.model
        return t.batch_size * t.grad_accum * m.block_size * self.env.world_size


def train(
    spec: RunSpec,
    env: JobEnv,
    stop: StopFlag,
    on_step: Callable[[int], None] | None = None,
) -> Result:
    """Runs to the configured step count or until `stop` is set. `on_step(step)` is called after
    each step (a seam for tests)."""
    loop = _prepare(spec, env)
    try:
        return _steps(loop, stop, on_step)
    finally:
        if env.world_size > 1:
            dist.destroy_process_group()


def _prepare(spec: RunSpec, env: JobEnv) -> Loop:
    device = _device(spec, env)
    run = build(spec, env, device)
    corpus = load_corpus(run.kind, env.books, env.eval_set)
    forward: nn.Module = run.model
    if spec.compile:
        forward = torch.compile(forward)  # type: ignore[assignment]
    if env.world_size > 1:
        ids = [env.local_rank] if device.type == "cuda" else None
        forward = nn.parallel.DistributedDataParallel(forward, device_ids=ids)
    gpus = env.world_size if device.type == "cuda" else 0
    progress = Progress(
        env.progress_file if env.rank == 0 else None,
        attempt=env.attempt,
        gpu_count=gpus,
        speak=env.rank == 0,
    )
    n_params = parameter_count(run.model)
    fpt = flops_per_token(run.config.model, n_params)
    loop = Loop(spec, env, run, corpus, device, forward, progress, fpt)
    _announce(loop, n_params)
    return loop


def _device(spec: RunSpec, env: JobEnv) -> torch.device:
    if spec.device == "cuda":
        torch.cuda.set_device(env.local_rank)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if env.world_size > 1:
        dist.init_process_group("nccl" if spec.device == "cuda" else "gloo")
    return (
        torch.device(spec.device, env.local_rank) if spec.device == "cuda" else torch.device("cpu")
    )


def _announce(loop: Loop, n_params: int) -> None:
    run = loop.run
    loop.progress.emit(
        "start",
        step=run.step,
        tokens=run.tokens,
        kind=run.kind,
        params=n_params,
        flops_per_token=loop.flops_per_token,
        tokens_per_step=loop.tokens_per_step,
        config=run.config.to_dict(),
        seed=run.seed,
        world_size=loop.env.world_size,
        grace_s=loop.env.grace_s,
    )
    if run.resumed:
        loop.progress.emit("resume", step=run.step, tokens=run.tokens)


def _steps(loop: Loop, stop: StopFlag, on_step: Callable[[int], None] | None) -> Result:
    run, t = loop.run, loop.run.config.train
    loss: float | None = None
    eval_loss: float | None = None
    clock = time.perf_counter()
    last_step = run.step
    while run.step < t.steps:
        loss_t = _one_step(loop)
        run.step += 1
        run.tokens += loop.tokens_per_step
        if on_step is not None:
            on_step(run.step)
        if run.step % t.log_every == 0 or run.step == t.steps:
            loss = _mean_over_ranks(loop, loss_t)
            clock, last_step = _report(loop, loss, clock, last_step)
        if _agreed_stop(loop, stop):
            _checkpoint(loop, "signal")
            return Result(run.step, loss_t.item(), eval_loss, preempted=True)
        if run.step % t.checkpoint_every == 0 and run.step < t.steps:
            _checkpoint(loop, "interval")
        if run.step % t.eval_every == 0 or run.step == t.steps:
            eval_loss = _evaluate(loop)
    if eval_loss is None:  # an attempt that found the run already finished
        eval_loss = _evaluate(loop)
    _checkpoint(loop, "final")
    _done(loop, loss, eval_loss)
    return Result(run.step, loss, eval_loss, preempted=False)


def _one_step(loop: Loop) -> Tensor:
    run, t, m = loop.run, loop.run.config.train, loop.run.config.model
    for group in run.optimizer.param_groups:
        group["lr"] = lr_at(run.kind, run.config, run.step)
    total = torch.zeros((), device=loop.device)
    for micro in range(t.grad_accum):
        x, y = batch_at(
            loop.corpus.train,
            seed=run.seed,
            step=run.step,
            rank=loop.env.rank * t.grad_accum + micro,
            batch_size=t.batch_size,
            block_size=m.block_size,
        )
        x, y = x.to(loop.device, non_blocking=True), y.to(loop.device, non_blocking=True)
        with _sync_unless(loop, last=micro == t.grad_accum - 1), _autocast(loop.device):
            loss = loss_of(loop.forward(x), y) / t.grad_accum
        loss.backward()  # type: ignore[no-untyped-call]
        total += loss.detach()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), t.grad_clip)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return total


def _sync_unless(loop: Loop, *, last: bool) -> contextlib.AbstractContextManager[Any]:
    """DDP all-reduces gradients on the last micro-batch of a step only."""
    if last or not isinstance(loop.forward, nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return loop.forward.no_sync()


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _report(loop: Loop, loss: float, since: float, since_step: int) -> tuple[float, int]:
    now = time.perf_counter()
    tokens_per_s = (loop.run.step - since_step) * loop.tokens_per_step / max(now - since, 1e-9)
    lr = loop.run.optimizer.param_groups[0]["lr"]
    fields: dict[str, Any] = {"loss": loss, "tokens_per_s": tokens_per_s, "lr": lr}
    peak = _peak_flops(loop.device)
    if peak is not None:
        fields["mfu"] = tokens_per_s * loop.flops_per_token / (peak * loop.env.world_size)
    loop.progress.emit("train", step=loop.run.step, tokens=loop.run.tokens, **fields)
    return now, loop.run.step


def _peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)


def _mean_over_ranks(loop: Loop, value: Tensor) -> float:
    if loop.env.world_size > 1:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.AVG)
    return float(value.item())


def _agreed_stop(loop: Loop, stop: StopFlag) -> bool:
    """Every rank stops after the same step, or the others would wait forever in the next
    all-reduce: one rank's signal stops them all."""
    if loop.env.world_size == 1:
        return bool(stop)
    flag = torch.tensor([1.0 if stop else 0.0], device=loop.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item() > 0)


def _checkpoint(loop: Loop, reason: str) -> None:
    run = loop.run
    if loop.env.rank == 0:
        began = time.perf_counter()
        path = checkpoint.save(loop.env.checkpoint_dir, run.step, state_of(run))
        save_s = time.perf_counter() - began
        loop.progress.emit(
            "checkpoint",
            step=run.step,
            tokens=run.tokens,
            path=str(path),
            reason=reason,
            save_s=save_s,
        )
    if loop.env.world_size > 1:
        dist.barrier()


@torch.no_grad()
def _evaluate(loop: Loop) -> float:
    """Mean cross-entropy per byte on the fixed held-out windows; reports its perplexity."""
    run, model = loop.run, loop.run.model
    model.eval()
    t, m = run.config.train, run.config.model
    losses = []
    for x, y in eval_batches(
        loop.corpus.held_out,
        batches=t.eval_batches,
        batch_size=t.batch_size,
        block_size=m.block_size,
    ):
        with _autocast(loop.device):
            losses.append(loss_of(model(x.to(loop.device)), y.to(loop.device)).item())
    model.train()
    eval_loss = sum(losses) / len(losses)
    loop.progress.emit(
        "eval", step=run.step, tokens=run.tokens, eval_loss=eval_loss, eval_ppl=math.exp(eval_loss)
    )
    return eval_loss


def _done(loop: Loop, loss: float | None, eval_loss: float) -> None:
    fields: dict[str, Any] = {"eval_loss": eval_loss, "eval_ppl": math.exp(eval_loss)}
    if loss is not None:
        fields["loss"] = loss
    loop.progress.emit("done", step=loop.run.step, tokens=loop.run.tokens, **fields)
