"""README's walkthroughs, pasted in order on a fresh clone, run as written (issue 17).

Every ```bash / ```sh block of README.md runs in README order, as one bash session (a variable
or `source` of one block holds in the next) under `set -e -o pipefail`, so every command must
exit 0. They run against a real facility started as `make run` starts one (`aifactory up`,
SQLite, the local executor; 8 virtual GPUs, as README tells a machine without any), in a
working directory laid out like the clone: `.venv` (this interpreter's environment),
`examples/`, and `.aifactory`, the facility's data folder. The CLI finds the facility's address
and the admin token where README says they are: in the CLI config the first start saved.

A block right after `<!-- readme-test: skip (why) -->` is not run: `make` itself, a Slurm
cluster, a GPU, a benchmark. Job, proposal and erasure numbers in README are those of this run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.process import FacilityProcess

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SHELLS = ("bash", "sh")
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\b\s*(.*?)\s*-->")  # a line of its own
FENCE = re.compile(r"^```(\S*)\s*$")
MARK = ">>> README.md:"
BUDGET_S = 170  # the whole walkthrough, facility start not included


@dataclass(frozen=True)
class Block:
    line: int  # of its opening fence, counted from 1
    language: str
    text: str
    skip: str | None  # why it is not run, from the note right before it


def blocks(markdown: str) -> list[Block]:
    """The fenced blocks in order, each with the skip note that stands right before it (only
    blank lines between)."""
    lines = markdown.splitlines()
    found: list[Block] = []
    note: str | None = None
    at = 0
    while at < len(lines):
        fence = FENCE.match(lines[at])
        if fence is None:
            skip = SKIP.fullmatch(lines[at].strip())
            if skip is not None:
                note = skip.group(1) or "skipped"
            elif lines[at].strip():
                note = None
            at += 1
            continue
        end = next((i for i in range(at + 1, len(lines)) if lines[i].startswith("```")), None)
        assert end is not None, f"README.md:{at + 1}: a block that never closes"
        found.append(Block(at + 1, fence.group(1), "\n".join(lines[at + 1 : end]), note))
        note = None
        at = end + 1
    return found


def session(shell_blocks: list[Block]) -> str:
    """One bash script: each block as written, after a line that says where it starts."""
    parts = ["set -e -o pipefail"]
    for block in shell_blocks:
        parts += [f"echo '{MARK}{block.line}'", block.text]
    parts.append(f"echo '{MARK}end'")
    return "\n".join(parts) + "\n"


def failed_block(output: str) -> str:
    """The last block that began, and what it printed."""
    start = output.rfind(MARK)
    return output[start:] if start >= 0 else output


def test_the_blocks_are_found_with_their_notes() -> None:
    sample = (
        "```sh\nmake run\n```\n"
        "<!-- readme-test: skip (needs a Slurm cluster) -->\n\n```bash\nsqueue\n```\n"
        "text\n<!-- readme-test: skip (far away) -->\ntext\n```bash\nls\n```\n"
        "mention <!-- readme-test: skip (inline) -->\n```bash\npwd\n```\n"
        "```python\nprint(1)\n```\n"
    )
    assert blocks(sample) == [
        Block(1, "sh", "make run", None),
        Block(6, "bash", "squeue", "(needs a Slurm cluster)"),
        Block(12, "bash", "ls", None),  # the note is not right before it
        Block(16, "bash", "pwd", None),  # a note is a line of its own
        Block(19, "python", "print(1)", None),
    ]


def test_every_skip_note_stands_before_a_shell_block() -> None:
    text = README.read_text(encoding="utf-8")
    noted = sum(1 for line in text.splitlines() if SKIP.fullmatch(line.strip()))
    assert noted == sum(1 for b in blocks(text) if b.skip and b.language in SHELLS)


@pytest.fixture
def clone(tmp_path: Path) -> Iterator[tuple[Path, FacilityProcess]]:
    """A working directory like a fresh clone's after `make run`, and its running facility."""
    work = tmp_path / "aifactory"
    data = work / ".aifactory"
    data.mkdir(parents=True)
    (work / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    (work / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    facility = FacilityProcess(data, f"sqlite:///{data / 'aifactory.db'}", virtual_gpus=8)
    facility.start()
    try:
        yield work, facility
    finally:
        facility.stop()
        facility.kill_leftover_jobs()


@pytest.mark.timeout(BUDGET_S + 60)  # the facility's start and stop besides
def test_every_walkthrough_runs_as_written(clone: tuple[Path, FacilityProcess]) -> None:
    work, facility = clone
    runnable = [
        b for b in blocks(README.read_text(encoding="utf-8")) if b.language in SHELLS and not b.skip
    ]
    assert len(runnable) >= 4, "README's walkthroughs were not found"
    home = work.parent / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIFACTORY_", "VIRTUAL_ENV"))}
    env |= {"HOME": str(home), "AIFACTORY_CONFIG": facility.env["AIFACTORY_CONFIG"]}
    started = time.monotonic()
    try:
        done = subprocess.run(
            ["bash", "-c", session(runnable)],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=BUDGET_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.output if isinstance(exc.output, str) else (exc.output or b"").decode()
        raise AssertionError(f"over {BUDGET_S} s, in {failed_block(output)}") from None
    took = time.monotonic() - started
    assert done.returncode == 0, f"exit {done.returncode} in {failed_block(done.stdout)}"
    assert done.stdout.rstrip().endswith(f"{MARK}end"), done.stdout
    print(f"README's {len(runnable)} blocks ran in {took:.0f} s")
