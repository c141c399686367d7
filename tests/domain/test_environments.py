"""What a requirements file may say, its canonical form, and the key an environment is known by."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aifactory.domain.environments import (
    MAX_REQUIREMENTS,
    RequirementsError,
    environment_key,
    parse_python,
    parse_requirements,
)

KEY_PARTS: dict[str, Any] = {
    "python": "3.11",
    "platform": "linux-x86_64",
    "index": "https://pypi.example/simple",
}


def test_requirements_come_canonical_sorted_and_once() -> None:
    text = """
# the model's needs
Torch_Vision[Extra_B, a] >= 0.18 , <1   # a comment
numpy==1.26 ; python_version<"3.12"
numpy==1.26;python_version < '3.12'
pandas \\
    >=2
"""
    assert parse_requirements(text) == (
        'numpy==1.26; python_version < "3.12"',
        "pandas>=2",
        "torch-vision[a,extra-b]<1,>=0.18",
    )


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("-r other.txt", "option -r is not accepted: the facility's registry is set by"),
        ("--index-url https://evil.example/simple", "option --index-url is not accepted"),
        ("--extra-index-url=https://x", "option --extra-index-url is not accepted"),
        ("-e ./checkout", "option -e is not accepted"),
        ("-f https://x/links", "option -f is not accepted"),
        ("--trusted-host x.example", "option --trusted-host is not accepted"),
        ("numpy --hash=sha256:00", "options on a requirement line"),
        ("numpy @ https://x.example/numpy.whl", "URLs and local paths are not accepted"),
        ("file:///srv/numpy.whl", "URLs and local paths are not accepted"),
        ("git+https://github.com/x/y", "URLs and local paths are not accepted"),
        ("./numpy", "URLs and local paths are not accepted"),
        ("/srv/wheels/numpy", "URLs and local paths are not accepted"),
        ("numpy-1.26-py3-none-any.whl", "URLs and local paths are not accepted"),
        ("numpy==", "not a requirement"),
        ("numpy >= 1 <<", "not a requirement"),
    ],
)
def test_a_line_that_is_not_a_package_of_the_registry_is_refused_with_its_number(
    line: str, why: str
) -> None:
    with pytest.raises(RequirementsError, match=f"^line 3: {re.escape(why)}") as refused:
        parse_requirements(f"# ours\nnumpy\n{line}\n")
    assert refused.value.line == 3


def test_no_requirement_or_too_many_is_refused() -> None:
    with pytest.raises(RequirementsError, match="no requirement"):
        parse_requirements("# nothing\n\n   \n")
    many = "\n".join(f"package{n}" for n in range(MAX_REQUIREMENTS + 1))
    with pytest.raises(RequirementsError, match=f"at most {MAX_REQUIREMENTS}"):
        parse_requirements(many)
    assert len(parse_requirements(many.rsplit("\n", 1)[0])) == MAX_REQUIREMENTS


def test_the_key_is_32_hex_digits_and_changes_with_each_part() -> None:
    key = environment_key(["numpy==1.26"], **KEY_PARTS)
    assert len(key) == 32
    assert int(key, 16) >= 0
    changed = [
        environment_key(["numpy==1.27"], **KEY_PARTS),
        environment_key(["numpy==1.26"], **{**KEY_PARTS, "python": "3.12"}),
        environment_key(["numpy==1.26"], **{**KEY_PARTS, "platform": "linux-aarch64"}),
        environment_key(["numpy==1.26"], **{**KEY_PARTS, "index": "https://other.example/"}),
        environment_key(["numpy==1.26"], **{**KEY_PARTS, "index": None}),
    ]
    assert key not in changed
    assert len(set(changed)) == len(changed)
    trailing_slash = {**KEY_PARTS, "index": "https://pypi.example/simple/"}
    assert environment_key(["numpy==1.26"], **trailing_slash) == key  # the same registry


NAMES = st.sampled_from(["numpy", "Torch", "scikit_learn", "a.b-c", "Pillow"])
SPECS = st.sampled_from(["", "==1.0", ">=2,<3", "~=1.4", "!=0.9"])
REQUIREMENT = st.tuples(NAMES, SPECS).map("".join)


@given(
    st.lists(REQUIREMENT, min_size=1, max_size=8),
    st.randoms(use_true_random=False),
    st.lists(st.sampled_from(["", "# note", "   "]), max_size=4),
)
def test_the_key_is_the_same_whatever_the_order_repeats_and_comments(
    requirements: list[str], shuffler: random.Random, noise: list[str]
) -> None:
    lines = [*requirements, *requirements[:2], *noise]
    shuffler.shuffle(lines)
    spaced = [f"  {line.upper() if line.islower() else line}  # why" for line in lines]
    first = parse_requirements("\n".join(requirements))
    again = parse_requirements("\n".join(spaced))
    assert again == first
    assert environment_key(again, **KEY_PARTS) == environment_key(first, **KEY_PARTS)
    assert environment_key(list(reversed(first)) * 2, **KEY_PARTS) == environment_key(
        first, **KEY_PARTS
    )


@pytest.mark.parametrize("given_version", ["3.11", " 3.12 ", "3.9"])
def test_a_python_version_is_major_dot_minor(given_version: str) -> None:
    assert parse_python(given_version) == given_version.strip()


@pytest.mark.parametrize("given_version", ["3", "3.11.7", "python3.11", "2.7", "3.x", ""])
def test_any_other_python_version_is_refused(given_version: str) -> None:
    with pytest.raises(ValueError, match=r"give major\.minor, e\.g\. 3\.11"):
        parse_python(given_version)
