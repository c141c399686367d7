"""Array specs as Slurm writes them: ranges, steps, lists and a running limit."""

from __future__ import annotations

import pytest

from aifactory.domain.arrays import MAX_TASKS, ArraySpec, parse_array


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-3", ArraySpec((0, 1, 2, 3))),
        ("0-99%8", ArraySpec(tuple(range(100)), 8)),
        ("0-20:10", ArraySpec((0, 10, 20))),
        ("1,3,8-10", ArraySpec((1, 3, 8, 9, 10))),
        ("7", ArraySpec((7,))),
    ],
)
def test_arrays_are_read_as_slurm_writes_them(text: str, expected: ArraySpec) -> None:
    assert parse_array(text) == expected


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "expected N, A-B or A-B:STEP"),
        ("5-1", "the range runs backwards"),
        (f"0-{MAX_TASKS}", f"at most {MAX_TASKS} tasks"),
        ("1,1", "an index is given twice"),
        ("0-9%0", "the limit must be a whole number of at least 1"),
        ("0-9:0", "the step must be at least 1"),
        ("a-b", "expected N, A-B or A-B:STEP"),
    ],
)
def test_a_bad_array_says_what_is_wrong(text: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_array(text)
