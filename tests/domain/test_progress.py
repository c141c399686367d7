"""The progress channel's parser and the GPU-seconds a preemption loses (domain.progress)."""

from __future__ import annotations

import json

import pytest

from aifactory.domain.progress import (
    Record,
    Run,
    latest,
    loss_curves,
    parse,
    parse_line,
    preempted_runs,
    preemption_losses,
    thin,
)


def line(**fields: object) -> str:
    return json.dumps(fields)


def test_a_good_line_keeps_the_figures_and_ignores_unknown_keys() -> None:
    record = parse_line(
        line(at=10.5, attempt=2, event="train", step=7, loss=3.25, tokens_per_s=1e4, mfu=0.4)
    )
    assert record == Record(at=10.5, event="train", attempt=2, step=7, loss=3.25, tokens_per_s=1e4)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        '{"at": 1, "event": "train", "step": 3',  # half written
        "[1, 2]",
        line(event="train", step=1),  # no time
        line(at="soon", event="train"),
        line(at=float("nan"), event="train"),
        line(at=1, event="bogus"),
        line(at=1),
        line(at=True, event="train"),
        line(at=1, event="train", pad="x" * 9000),  # too long
        "[" * 4000,  # deeper than json.loads goes (RecursionError), under the length cap
    ],
)
def test_a_bad_line_is_no_record(text: str) -> None:
    assert parse_line(text) is None


def test_badly_typed_figures_are_dropped_not_the_record() -> None:
    record = parse_line(line(at=1, event="eval", step=2.5, eval_loss="low", eval_ppl=float("inf")))
    assert record == Record(at=1.0, event="eval")


def test_parse_skips_bad_lines_and_keeps_file_order() -> None:
    text = "\n".join(
        [
            'ut": 1, "event": "train"}',  # the cut first line of a tail
            line(at=1, event="train", step=10, loss=4.0),
            "garbage",
            line(at=2, event="eval", step=10, eval_loss=4.2, eval_ppl=66.7),
            line(at=3, event="train", step=20, loss=3.5),
            '{"at": 4, "event": "tra',  # being written
        ]
    )
    assert [(r.event, r.step) for r in parse(text)] == [("train", 10), ("eval", 10), ("train", 20)]


def test_latest_takes_each_figure_from_the_newest_record_that_has_it() -> None:
    records = parse(
        "\n".join(
            [
                line(at=1, attempt=1, event="train", step=10, loss=4.0, tokens_per_s=900.0),
                line(at=2, attempt=1, event="eval", step=10, eval_loss=4.2, eval_ppl=66.7),
                line(at=3, attempt=1, event="checkpoint", step=10),
                line(at=4, attempt=2, event="train", step=20, loss=3.5, tokens=640),
            ]
        )
    )
    found = latest(records)
    assert (found.step, found.loss, found.tokens_per_s) == (20, 3.5, 900.0)
    assert (found.eval_loss, found.eval_ppl, found.tokens, found.attempt) == (4.2, 66.7, 640, 2)
    assert (found.checkpoint_step, found.checkpoint_at, found.at) == (10, 3.0, 4.0)


def test_thin_keeps_first_and_last_and_at_most_the_number_asked() -> None:
    points = [(float(i), float(i)) for i in range(1001)]
    thinned = thin(points, 100)
    assert len(thinned) == 100
    assert (thinned[0], thinned[-1]) == ((0.0, 0.0), (1000.0, 1000.0))
    assert thin(points[:5], 100) == points[:5]


def test_loss_curves_are_over_the_step() -> None:
    records = [
        Record(at=1, event="train", step=10, loss=4.0),
        Record(at=2, event="eval", step=10, eval_loss=4.5),
        Record(at=3, event="train", step=20, loss=3.0),
    ]
    assert loss_curves(records, 100) == ([(10.0, 4.0), (20.0, 3.0)], [(10.0, 4.5)])


# ---- lost GPU-seconds ---------------------------------------------------------------------------
EVENTS = [
    (100.0, "PENDING", "ADMITTED"),
    (101.0, "ADMITTED", "RUNNING"),
    (150.0, "RUNNING", "RUNNING"),  # the preemption asked for
    (160.0, "RUNNING", "PREEMPTED"),
    (160.0, "PREEMPTED", "PENDING"),
    (170.0, "PENDING", "ADMITTED"),
    (171.0, "ADMITTED", "RUNNING"),
    (200.0, "RUNNING", "PREEMPTED"),
    (200.0, "PREEMPTED", "PENDING"),
    (210.0, "PENDING", "ADMITTED"),
    (211.0, "ADMITTED", "RUNNING"),
    (300.0, "RUNNING", "SUCCEEDED"),
]


def test_preempted_runs_come_from_the_state_changes() -> None:
    assert preempted_runs(EVENTS) == [Run(101.0, 160.0), Run(171.0, 200.0)]


def test_the_loss_is_the_gpu_time_after_the_runs_last_checkpoint() -> None:
    records = [
        Record(at=120, event="train", step=100, loss=3.0),
        Record(at=130, event="checkpoint", step=100),
        Record(at=155, event="train", step=180, loss=2.8),
        Record(at=157, event="checkpoint", step=180),  # on SIGTERM, in the grace period
        Record(at=172, event="resume", step=180),
        Record(at=190, event="train", step=250, loss=2.7),  # second run: no checkpoint
        Record(at=215, event="resume", step=180),
    ]
    first, second = preemption_losses(records, preempted_runs(EVENTS), gpus=4)

    assert (first.checkpoint_at, first.checkpoint_step) == (157, 180)
    assert first.lost_gpu_s == (160 - 157) * 4
    assert first.lost_steps == 0
    assert second.checkpoint_at is None  # the whole run is lost
    assert second.lost_gpu_s == (200 - 171) * 4
    assert (second.from_step, second.last_step, second.lost_steps) == (180, 250, 70)


def test_a_checkpoint_of_an_earlier_run_does_not_save_a_later_one() -> None:
    records = [Record(at=130, event="checkpoint", step=100)]
    runs = [Run(101.0, 160.0), Run(171.0, 200.0)]
    first, second = preemption_losses(records, runs, gpus=1)
    assert first.lost_gpu_s == 30
    assert second.lost_gpu_s == 29


def test_no_progress_at_all_loses_each_whole_run() -> None:
    (only,) = preemption_losses([], [Run(10.0, 70.0)], gpus=2)
    assert (only.lost_gpu_s, only.last_step, only.lost_steps) == (120.0, None, None)


def test_integers_too_big_for_a_float_are_skipped_not_raised() -> None:
    huge = "1" + "0" * 400
    assert parse_line('{"event": "train", "at": ' + huge + ', "step": 1}') is None
    line = '{"event": "train", "at": 5.0, "step": ' + huge + ', "loss": ' + huge + "}"
    found = parse_line(line)
    assert found is not None
    assert found.step is None
    assert found.loss is None
