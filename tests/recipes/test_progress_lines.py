"""The recipe's progress, also as lines a person reads in the job's log (`logs -f`,
`submit --wait`); only the rank that reports speaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifactory.recipes.dutch_gpt.progress import Progress, read, readable


def test_each_record_is_also_a_readable_line_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    progress = Progress(tmp_path / "p.jsonl", attempt=1, gpu_count=0, clock=lambda: 5.0)
    progress.emit("train", step=120, tokens=9, loss=2.8712, tokens_per_s=41200.4)
    progress.emit("checkpoint", step=200, tokens=9, path="/ck/200.pt", reason="interval")
    assert capsys.readouterr().out.splitlines() == [
        "[train] step 120  loss 2.871  41,200 tok/s",
        "[checkpoint] step 200  → /ck/200.pt  (interval)",
    ]
    assert [r["event"] for r in read(tmp_path / "p.jsonl")] == ["train", "checkpoint"]


def test_other_ranks_are_silent(capsys: pytest.CaptureFixture[str]) -> None:
    Progress(None, attempt=1, gpu_count=2, speak=False).emit("train", step=1, tokens=1, loss=3.0)
    assert capsys.readouterr().out == ""


def test_a_value_of_an_unexpected_kind_is_still_shown() -> None:
    assert readable("eval", 3, {"eval_ppl": "n/a"}) == "[eval] step 3  eval_ppl n/a"
