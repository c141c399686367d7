"""Tiny runs on the CPU: learning, evaluation, preemption and resume, fine-tuning.

Tolerance: a resumed run is bit-identical to an unpreempted one on the same machine and thread
count (same batches, same restored state, deterministic CPU kernels); the tests allow 1e-6."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from aifactory.recipes.dutch_gpt import checkpoint, progress
from aifactory.recipes.dutch_gpt.run import RunSpec, StopFlag
from aifactory.recipes.dutch_gpt.train import train
from tests.recipes.conftest import (
    CHECKPOINT_EVERY,
    SEED,
    STEPS,
    Reference,
    job_env,
    pretrain_spec,
    short_tiny,
)

TOLERANCE = 1e-6


def events(records: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [r for r in records if r["event"] == name]


def test_the_loss_falls_and_checkpoints_are_written(reference: Reference) -> None:
    train_losses = [float(r["loss"]) for r in events(reference.records, "train")]
    assert train_losses[0] > 3.5  # near ln 256 = 5.5 after 10 steps
    assert reference.result.loss < train_losses[0] - 1.0
    assert not reference.result.preempted
    saved = checkpoint.saved(reference.root / "checkpoints")
    assert [p.name for p in saved] == ["step-00000040.pt", "step-00000060.pt"]
    reasons = [r["reason"] for r in events(reference.records, "checkpoint")]
    assert reasons == ["interval", "interval", "final"]


def test_progress_reports_the_contract_fields(reference: Reference) -> None:
    start, *rest = reference.records
    assert start["event"] == "start"
    assert start["params"] == 119_104
    assert start["flops_per_token"] > 6 * 100_000
    for record in reference.records:
        assert {"at", "attempt", "event", "step", "tokens", "gpu_count"} <= record.keys()
        assert record["attempt"] == 1
    train_event = events(rest, "train")[-1]
    assert train_event["step"] == STEPS
    assert train_event["tokens"] == STEPS * 16 * 64
    assert train_event["tokens_per_s"] > 0
    done = rest[-1]
    assert done["event"] == "done"
    assert done["loss"] == reference.result.loss


def test_evaluation_perplexity_on_the_held_out_sentences(reference: Reference) -> None:
    evals = events(reference.records, "eval")
    assert [e["step"] for e in evals] == [30, 60]
    for e in evals:
        assert math.isclose(float(e["eval_ppl"]), math.exp(float(e["eval_loss"])))
    assert float(evals[-1]["eval_ppl"]) < 30  # uniform guessing: 256


def test_a_preempted_run_resumes_where_it_stopped_and_ends_as_if_never_stopped(
    tmp_path: Path, reference: Reference
) -> None:
    stop = StopFlag()
    stop_at = CHECKPOINT_EVERY + 7  # past the interval checkpoint at 20
    first = train(
        pretrain_spec(), job_env(tmp_path), stop, lambda s: s == stop_at and stop.set("test")
    )
    assert first.preempted
    assert first.step == stop_at
    records = progress.read(tmp_path / "progress.jsonl")
    assert records[-1]["event"] == "checkpoint"
    assert records[-1]["reason"] == "signal"
    assert records[-1]["step"] == stop_at  # nothing lost: < one checkpoint interval

    second = train(pretrain_spec(), job_env(tmp_path, attempt=2), StopFlag())
    assert not second.preempted
    resumed = progress.read(tmp_path / "progress.jsonl")[len(records) :]
    assert [r["event"] for r in resumed[:2]] == ["start", "resume"]
    assert resumed[1]["step"] == stop_at
    assert abs(second.loss - reference.result.loss) <= TOLERANCE
    assert reference.result.eval_loss is not None
    assert second.eval_loss is not None
    assert abs(second.eval_loss - reference.result.eval_loss) <= TOLERANCE


def test_finetuning_starts_from_a_pretrained_checkpoint(
    tmp_path: Path, reference: Reference
) -> None:
    config = short_tiny().with_overrides(steps=20, eval_every=20)
    spec = RunSpec("finetune", config, SEED, init_from=reference.root / "checkpoints")
    result = train(spec, job_env(tmp_path), StopFlag())
    assert result.step == 20
    assert result.eval_loss is not None
    assert reference.result.eval_loss is not None
    # the fine-tuning text (dev) is like the held-out text (test): evaluation improves
    assert result.eval_loss < reference.result.eval_loss
    saved = checkpoint.latest(tmp_path / "checkpoints")
    assert saved is not None
    assert saved["kind"] == "finetune"


def test_an_attempt_that_finds_the_run_finished_only_reports_it(
    tmp_path: Path, reference: Reference
) -> None:
    shutil.copytree(reference.root / "checkpoints", tmp_path / "checkpoints")
    result = train(pretrain_spec(), job_env(tmp_path, attempt=3), StopFlag())
    assert result.step == STEPS
    assert result.eval_loss == reference.result.eval_loss
    records = progress.read(tmp_path / "progress.jsonl")
    assert [r["event"] for r in records] == ["start", "resume", "eval", "checkpoint", "done"]
