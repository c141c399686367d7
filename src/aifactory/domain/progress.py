"""The progress channel: what a training job reports, and what a preemption cost it.

A job appends one JSON object per line to its progress file (domain.jobfiles; the format is
docs/recipes.md's):
    {"at": 1767000000.5, "attempt": 1, "event": "train", "step": 200, "loss": 3.1,
     "tokens_per_s": 51000.0, "tokens": 819200, "gpu_count": 1}
Events: `start`, `train` (loss, tokens_per_s), `eval` (eval_loss, eval_ppl), `checkpoint`
(written only once the checkpoint is durably in place), `resume` (a new attempt loaded a
checkpoint), `done`.

Invariants: reading is lenient and bounded: a line that is not a JSON object with a known
event, a finite `at` and well-typed figures is skipped (a half-written last line, a line cut by
reading only the file's tail), unknown keys are ignored, and what is kept for a chart is
thinned to a fixed number of points. Nothing here reads a file: text in, values out.

Lost GPU-seconds: a preempted attempt loses what it computed after its last checkpoint. For each
preemption, `lost_gpu_s = (preempted_at - last checkpoint at) * gpus`, the checkpoint taken in
the same run (after the run started, before it was preempted); with none, the whole run is lost:
`(preempted_at - run started_at) * gpus`. `preempted_at` is when the facility saw the attempt
end, so the grace period and the facility's poll delay count as lost, as they cost GPU time too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

EVENTS = frozenset({"start", "train", "eval", "checkpoint", "resume", "done"})
MAX_LINE = 8192  # a longer line is no progress record
_FLOATS = ("loss", "tokens_per_s", "eval_loss", "eval_ppl")
_INTS = ("attempt", "step", "tokens", "gpu_count")


@dataclass(frozen=True, slots=True)
class Record:
    at: float
    event: str
    attempt: int | None = None
    step: int | None = None
    loss: float | None = None
    tokens_per_s: float | None = None
    eval_loss: float | None = None
    eval_ppl: float | None = None
    tokens: int | None = None
    gpu_count: int | None = None


def parse_line(line: str) -> Record | None:
    """The record on one line, or None when the line is not one."""
    if len(line) > MAX_LINE:
        return None
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" deeper than Python goes
        return None
    if not isinstance(data, dict) or data.get("event") not in EVENTS:
        return None
    at = _finite(data.get("at"))
    if at is None:
        return None
    figures: dict[str, float | int | None] = {k: _finite(data.get(k)) for k in _FLOATS}
    figures.update({k: _whole(data.get(k)) for k in _INTS})
    return Record(at=at, event=data["event"], **figures)  # type: ignore[arg-type]


def parse(text: str) -> list[Record]:
    """Every record in `text`, in file order; bad lines skipped."""
    return [r for line in text.splitlines() if (r := parse_line(line)) is not None]


BIGGEST = 2**63  # JSON integers are unbounded; a figure beyond this is not one


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and abs(value) > BIGGEST:
        return None  # float() of it would overflow
    return float(value) if math.isfinite(value) else None


def _whole(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > BIGGEST:
        return None
    return value


# ---- what a reader wants of them ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Latest:
    """The newest value of each figure (each from the newest record that has it)."""

    at: float | None = None
    attempt: int | None = None
    step: int | None = None
    loss: float | None = None
    tokens_per_s: float | None = None
    eval_loss: float | None = None
    eval_ppl: float | None = None
    tokens: int | None = None
    checkpoint_step: int | None = None
    checkpoint_at: float | None = None


def latest(records: Sequence[Record]) -> Latest:
    found: dict[str, float | int] = {}
    for record in reversed(records):
        for name in ("at", "attempt", "step", "loss", "tokens_per_s", "eval_loss", "eval_ppl"):
            value = getattr(record, name)
            if value is not None and name not in found:
                found[name] = value
        if record.tokens is not None and "tokens" not in found:
            found["tokens"] = record.tokens
        if record.event == "checkpoint" and "checkpoint_at" not in found:
            found["checkpoint_at"] = record.at
            if record.step is not None:
                found["checkpoint_step"] = record.step
    return Latest(**found)  # type: ignore[arg-type]


def thin(points: Sequence[tuple[float, float]], most: int) -> list[tuple[float, float]]:
    """At most `most` of the points, evenly spaced, the first and the last always kept."""
    if len(points) <= most or most < 2:
        return list(points[:most]) if most < 2 else list(points)
    stride = (len(points) - 1) / (most - 1)
    return [points[round(i * stride)] for i in range(most)]


def loss_curves(
    records: Sequence[Record], most: int
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(train loss, eval loss) over the step, each thinned to `most` points."""
    train = [(float(r.step), r.loss) for r in records if r.step is not None and r.loss is not None]
    evals = [
        (float(r.step), r.eval_loss)
        for r in records
        if r.step is not None and r.eval_loss is not None
    ]
    return thin(train, most), thin(evals, most)


# ---- the cost of preemptions --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Run:
    """One attempt that ran and was preempted, as the job's events tell it."""

    started_at: float  # the attempt was seen running
    preempted_at: float  # the attempt was seen to have ended, preempted


@dataclass(frozen=True, slots=True)
class Preemption:
    run: Run
    gpus: int
    checkpoint_at: float | None  # the run's last checkpoint; None: it took none
    checkpoint_step: int | None
    from_step: int  # where the run began: the step it resumed from, 0 for a first run
    last_step: int | None  # the last step the run reported before it was preempted
    lost_gpu_s: float

    @property
    def lost_steps(self) -> int | None:
        """Steps computed after the last checkpoint: done again by the next attempt."""
        if self.last_step is None:
            return None
        kept = self.checkpoint_step if self.checkpoint_step is not None else self.from_step
        return max(0, self.last_step - kept)


def preempted_runs(events: Iterable[tuple[float, str | None, str]]) -> list[Run]:
    """The runs that ended preempted, from a job's state changes (at, from, to), oldest first."""
    runs: list[Run] = []
    started: float | None = None
    for at, before, after in sorted(events, key=lambda e: e[0]):
        if after == "RUNNING" and before != "RUNNING":
            started = at
        elif after == "PREEMPTED" and before == "RUNNING" and started is not None:
            runs.append(Run(started, at))
            started = None
    return runs


def preemption_losses(
    records: Sequence[Record], runs: Sequence[Run], gpus: int
) -> list[Preemption]:
    """What each preempted run lost: its GPU-time after its last checkpoint (module docstring).

    A record belongs to the run it was written in: after the previous preemption, up to this
    one (the job's clock may run a little ahead of the facility's, so not `started_at`)."""
    losses = []
    previous = -math.inf
    for run in runs:
        within = [r for r in records if previous < r.at <= run.preempted_at]
        losses.append(_loss(within, run, gpus))
        previous = run.preempted_at
    return losses


def _loss(within: Sequence[Record], run: Run, gpus: int) -> Preemption:
    checkpoints = [r for r in within if r.event == "checkpoint"]
    resumed = [r.step for r in within if r.event == "resume" and r.step is not None]
    steps = [r.step for r in within if r.step is not None]
    last = checkpoints[-1] if checkpoints else None
    since = max(last.at, run.started_at) if last is not None else run.started_at
    return Preemption(
        run=run,
        gpus=gpus,
        checkpoint_at=last.at if last is not None else None,
        checkpoint_step=last.step if last is not None else None,
        from_step=resumed[0] if resumed else 0,
        last_step=max(steps) if steps else None,
        lost_gpu_s=max(0.0, run.preempted_at - since) * gpus,
    )
