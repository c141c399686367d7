"""Job files (`aifactory submit job.yaml`, `aifactory submit script.sh`) and the one time-limit
rule: a YAML file read with its lines, #AIF and #SBATCH directives translated, every problem
named by file:line and field, flags over the file, and a bare number refused as ambiguous
everywhere but in Slurm's own `#SBATCH --time` (docs/jobfiles.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from aifactory.cli import directives, jobfile
from aifactory.cli.main import app
from aifactory.cli.units import megabytes, parse_duration
from aifactory.domain.durations import DurationError, seconds, slurm_seconds
from tests.conftest import LiveServer
from tests.e2e.process import FacilityProcess

NOWHERE = ["--url", "http://127.0.0.1:9", "--token", "afy_none"]  # --dry-run asks it nothing

# ---- the one time-limit rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", 45),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1d12h", 129600),
        (" 90m ", 5400),
        ("1:30:00", 5400),
        ("0:00:30", 30),
        ("100:00:00", 360000),
        ("2-00:00:01", 172801),
        ("1-12", 129600),  # Slurm's D-HH: the day makes it unambiguous
        ("1-2:30", 95400),
    ],
)
def test_a_duration_with_its_unit(text: str, expected: int) -> None:
    assert seconds(text) == expected


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("30", "30 is ambiguous: write 30s, 30m or 30h"),
        ("90", "90 is ambiguous: write 90s, 90m or 90h"),
        ("1:30", "1:30 is ambiguous (hours:minutes, or Slurm's minutes:seconds)"),
        ("30m1h", "give each unit once, largest first"),
        ("1:75:00", "minutes and seconds go up to 59"),
        ("soon", "is not a duration: write e.g. 30m, 2h"),
        ("", "is not a duration"),
        ("1.5h", "is not a duration"),
        ("1:2:3:4", "is not a duration"),
    ],
)
def test_a_bare_number_and_other_ambiguous_durations_are_refused(text: str, said: str) -> None:
    with pytest.raises(DurationError, match=said.replace("(", r"\(").replace(")", r"\)")):
        seconds(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30", 1800),  # Slurm: a bare number is minutes
        ("90:00", 5400),  # MM:SS, minutes past 59 as Slurm allows
        ("1:30", 90),
        ("1:00:00", 3600),
        ("2-12", 216000),
        ("1-0:30", 88200),
        ("1-00:00:10", 86410),
    ],
)
def test_slurm_time_keeps_slurms_rule(text: str, expected: int) -> None:
    assert slurm_seconds(text) == expected


@pytest.mark.parametrize("text", ["UNLIMITED", "infinite", "0", "-1", "2h", "1:2:3:4"])
def test_slurm_time_without_a_limit_or_in_another_syntax_is_refused(text: str) -> None:
    with pytest.raises(DurationError):
        slurm_seconds(text)


def test_the_cli_parser_refuses_in_typers_terms() -> None:
    assert parse_duration("2h") == 7200
    with pytest.raises(typer.BadParameter, match="30 is ambiguous: write 30s, 30m or 30h"):
        parse_duration("30")


@pytest.mark.parametrize(
    ("text", "bare", "mb"),
    [
        ("16G", None, 16384),
        ("16GB", None, 16384),
        ("16GiB", None, 16384),
        ("512m", None, 512),
        ("1T", None, 1024 * 1024),
        ("1500K", None, 2),  # rounded up, as Slurm rounds
        ("4000", "M", 4000),  # Slurm's --mem: a bare number is MB
    ],
)
def test_memory_with_its_unit(text: str, bare: str | None, mb: int) -> None:
    assert megabytes(text, bare=bare) == mb


@pytest.mark.parametrize(("text", "said"), [("16", "16 is ambiguous"), ("lots", "not an amount")])
def test_memory_without_a_unit_is_refused(text: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        megabytes(text)


# ---- YAML job files ---------------------------------------------------------------------------

GOOD_YAML = """\
# train BERT on Dutch books
name: train-bert
project: nlp
command: python train.py --lr 0.1 'two words'
gpus: 2
cpus: 8
memory: 32G
gpu_model: h100
time_limit: 1:30:00   # YAML alone would read this as a number (sexagesimal)
preemptible: yes
priority: -5
network: none
datasets:
  - nl-books@2
inputs: [7]
env:
  SEED: 42
  MODE: fast
working_dir: /home/nlp
"""


def from_yaml(text: str, name: str = "job.yaml") -> dict[str, Any]:
    source = jobfile.read_yaml(text, name)
    jobfile.check(source.fields, source, {})
    return source.fields


def problems_of(
    text: str, name: str = "job.yaml", flags: dict[str, Any] | None = None
) -> list[str]:
    given = flags or {}
    with pytest.raises(jobfile.JobFileError) as refused:
        source = jobfile.read_yaml(text, name)
        body = jobfile.merged(source, {f: v for f, (_, v) in given.items()})
        jobfile.check(body, source, {f: flag for f, (flag, _) in given.items()})
    return refused.value.problems


def test_a_yaml_job_file_reads_into_the_apis_fields() -> None:
    assert from_yaml(GOOD_YAML) == {
        "name": "train-bert",
        "project": "nlp",
        "command": ["python", "train.py", "--lr", "0.1", "two words"],
        "gpus": 2,
        "cpus": 8,
        "memory_mb": 32768,
        "gpu_model": "h100",
        "time_limit_s": 5400,
        "preemptible": True,
        "priority": -5,
        "network": "none",
        "datasets": ["nl-books@2"],
        "inputs": [7],
        "env": {"SEED": "42", "MODE": "fast"},  # as written, not the number 42
        "working_dir": "/home/nlp",
    }


def test_a_yaml_file_takes_the_apis_own_names_a_list_command_and_a_script() -> None:
    fields = from_yaml("command: [sleep, 10]\ntime_limit_s: 600\nmemory_mb: 2048\n", "t.yml")
    assert fields == {
        "name": "t",  # the file's name, when it gives none
        "command": ["sleep", "10"],
        "time_limit_s": 600,
        "memory_mb": 2048,
    }
    script = from_yaml("script: |\n  echo one\n  echo two\nname: 2024\n")
    assert script == {"name": "2024", "script": "echo one\necho two\n"}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "command: true\ngpus: -1\n",
            "job.yaml:2: gpus: Input should be greater than or equal to 0",
        ),
        (
            "command: true\ngpu: 2\n",
            "job.yaml:2: gpu: not a field of a job file (did you mean gpus?)",
        ),
        (
            "command: true\ntime_limit: 30\n",
            "job.yaml:2: time_limit: 30 is ambiguous: write 30s, 30m or 30h",
        ),
        ("command: true\nmemory: 16\n", "job.yaml:2: memory: 16 is ambiguous: write 16M or 16G"),
        (
            "command: true\ntime_limit: 31d\n",
            "job.yaml:2: time_limit: Input should be less than or equal to 2592000 (seconds)",
        ),
        (
            "command:\n  - python\n  - [x]\n",
            "job.yaml:3: command[1]: Input should be a valid string",
        ),
        (
            "command: true\nenv:\n  A: x\n  B: [1]\n",
            "job.yaml:4: env.B: Input should be a valid string",
        ),
        (
            "command: true\nenv:\n  1BAD: x\n",
            "job.yaml:2: env: '1BAD' is not a valid environment variable name",
        ),
        ("command: true\nnetwork: wide\n", "job.yaml:2: network: Input should be 'none' or 'open'"),
        ("command: true\ngpus: 1\ngpus: 2\n", "job.yaml:3: gpus: gpus is given already, on line 2"),
        (
            "command: true\ntime_limit_s: 60\ntime_limit: 2h\n",
            "job.yaml:3: time_limit: time_limit_s is given already, on line 2",
        ),
        (
            'command: "echo\nname: x\n',
            "job.yaml:3: not valid YAML: found unexpected end of stream (while scanning a quoted "
            "scalar from line 1)",
        ),
        ("gpus: 1\n  cpus: 2\n", "job.yaml:2: not valid YAML: mapping values are not allowed here"),
        ("- python\n- train.py\n", "job.yaml:1: a job file is a mapping of fields"),
        ("", "job.yaml:1: a job file is a mapping of fields"),
        ("command: echo 'unclosed\n", "job.yaml:1: command: No closing quotation"),
        ("command: true\nscript: echo\n", "job.yaml: give exactly one of 'command' and 'script'"),
    ],
)
def test_an_invalid_yaml_file_names_its_line_and_field(text: str, said: str) -> None:
    found = problems_of(text)
    assert any(p.startswith(said) for p in found), found


def test_every_problem_of_a_yaml_file_is_named_in_the_files_order() -> None:
    text = "name: ''\ngpus: -1\ncpus: 0\ncommand: [true]\n"
    assert problems_of(text) == [
        "job.yaml:1: name: String should have at least 1 character",
        "job.yaml:2: gpus: Input should be greater than or equal to 0",
        "job.yaml:3: cpus: Input should be greater than or equal to 1",
    ]


def test_a_flag_over_the_file_is_named_as_the_flag() -> None:
    said = problems_of("command: true\ngpus: 1\n", flags={"gpus": ("--gpus", -2)})
    assert said == ["--gpus: Input should be greater than or equal to 0"]


# ---- batch scripts: #AIF and #SBATCH ----------------------------------------------------------


def from_script(*lines: str, name: str = "job.sh") -> dict[str, Any]:
    text = "\n".join(["#!/bin/bash", *lines, "python train.py", ""])
    source = jobfile.read_script(text, name)
    jobfile.check(source.fields, source, {})
    assert source.fields.pop("script") == text, "the script is sent as it is"
    return source.fields


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["#SBATCH --gpus=2"], {"gpus": 2}),
        (["#SBATCH -G 2"], {"gpus": 2}),
        (["#SBATCH -G2"], {"gpus": 2}),
        (["#SBATCH --gpus=a100:2"], {"gpus": 2, "gpu_model": "a100"}),
        (["#SBATCH --gpus=4", "#SBATCH --nodes=2"], {"gpus": 2, "nodes": 2}),  # the job's total
        (["#SBATCH --gpus-per-node=4", "#SBATCH -N 2"], {"gpus": 4, "nodes": 2}),
        (["#SBATCH --gres=gpu:2"], {"gpus": 2}),
        (["#SBATCH --gres=gpu:h100:4"], {"gpus": 4, "gpu_model": "h100"}),
        (["#SBATCH --gres=gpu"], {"gpus": 1}),
        (["#SBATCH --gres=gpu:h100"], {"gpus": 1, "gpu_model": "h100"}),
        (["#SBATCH --time=30"], {"time_limit_s": 1800}),  # Slurm's minutes
        (["#SBATCH -t 1:30:00"], {"time_limit_s": 5400}),
        (["#SBATCH --time 2-00:00:00"], {"time_limit_s": 172800}),
        (["#SBATCH --time=10:00"], {"time_limit_s": 600}),  # MM:SS
        (["#SBATCH --mem=4000"], {"memory_mb": 4000}),  # Slurm's MB
        (["#SBATCH --mem=16G"], {"memory_mb": 16384}),
        (["#SBATCH --mem-per-cpu=2G", "#SBATCH -c 4"], {"memory_mb": 8192, "cpus": 4}),
        (["#SBATCH --cpus-per-task=8"], {"cpus": 8}),
        (["#SBATCH -c 8"], {"cpus": 8}),
        (["#SBATCH --job-name=bert"], {"name": "bert"}),
        (["#SBATCH -J 'two words'"], {"name": "two words"}),
        (["#SBATCH --nodes=1 --ntasks=1"], {"nodes": 1}),
        (["#SBATCH --ntasks-per-node=1"], {}),
        (["#SBATCH --account=nlp"], {"project": "nlp"}),
        (["#SBATCH --chdir=/home/nlp"], {"working_dir": "/home/nlp"}),
        (["#SBATCH --gpus=2 --time=1:00:00  # a comment"], {"gpus": 2, "time_limit_s": 3600}),
        (["#SBATCH --gpus=1", "#SBATCH --gpus=3"], {"gpus": 3}),  # the later line wins
        (["#AIF --gpus 2 -t 2h"], {"gpus": 2, "time_limit_s": 7200}),
        (["#AIF --time-limit=90m"], {"time_limit_s": 5400}),
        (["#AIF -e SEED=1 -e MODE=fast"], {"env": {"SEED": "1", "MODE": "fast"}}),
        (["#AIF -d nl-books --dataset nl-eval@2"], {"datasets": ["nl-books", "nl-eval@2"]}),
        (["#AIF --input 3 --input 4"], {"inputs": [3, 4]}),
        (["#AIF --not-preemptible --priority -5"], {"preemptible": False, "priority": -5}),
        (["#AIF --network open --gpu-model h100"], {"network": "open", "gpu_model": "h100"}),
        (["#AIF --memory-mb 2048 --cpus 2 --nodes 1"], {"memory_mb": 2048, "cpus": 2, "nodes": 1}),
        (["#AIF --time-limit 2h", "#SBATCH --time=30"], {"time_limit_s": 7200}),  # ours win
        (["#SBATCH --job-name=x", "#AIF --name y"], {"name": "y"}),
        (["#AIF --notify"], {"notify": True}),
        (["#SBATCH --mail-type=END,FAIL --mail-user=me@uva.nl"], {"notify": True}),
        (["#SBATCH --mail-type=TIME_LIMIT_90"], {"notify": True}),
        (["#SBATCH --mail-type=BEGIN"], {}),  # the facility tells no starts
        (["#SBATCH --mail-type=ALL", "#SBATCH --mail-type=NONE"], {"notify": False}),
        (["#AIF --nodes 2 --one-block"], {"nodes": 2, "one_block": True}),
        (["#SBATCH --switches=1"], {"one_block": True}),
        (["#SBATCH --switches=1@2:00:00"], {}),  # Slurm gives way after the wait: a preference
        (["#SBATCH --switches=2"], {}),  # at most two blocks: the scheduler's own preference
        (
            ["", "# SBATCH --gpus=2 (a comment: a space after #)", "#SBATCH --cpus-per-task=2"],
            {"cpus": 2},
        ),
    ],
)
def test_directives_are_translated_into_the_apis_fields(
    lines: list[str], expected: dict[str, Any]
) -> None:
    assert from_script(*lines) == {"name": "job.sh", **expected}


def test_an_array_is_read_from_sbatch_and_aif_and_checked_by_the_apis_rule() -> None:
    assert from_script("#SBATCH --array=0-99%8") == {"name": "job.sh", "array": "0-99%8"}
    assert from_script("#SBATCH -a 1-3", "#AIF --array 0-9") == {"name": "job.sh", "array": "0-9"}
    found = script_problems("#SBATCH --array=5-1")
    assert found == ["job.sh:2: #SBATCH --array: '5-1': the range runs backwards"]


def test_slurm_and_aif_dependencies_become_the_jobs_to_wait_for() -> None:
    found = from_script("#SBATCH --dependency=afterok:12:13,afternotok:14", "#AIF --after-any 15")
    assert found == {
        "name": "job.sh",
        "after_ok": [12, 13],
        "after_not_ok": [14],
        "after_any": [15],
    }


def script_problems(*lines: str, first: str = "#!/bin/bash") -> list[str]:
    with pytest.raises(jobfile.JobFileError) as refused:
        text = "\n".join([first, *lines, "echo hi", ""])
        source = jobfile.read_script(text, "job.sh")
        jobfile.check(source.fields, source, {})
    return refused.value.problems


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (
            "#SBATCH --dependency=afterok:1?afterany:2",
            "job.sh:2: #SBATCH --dependency: dependencies joined by '?'",
        ),
        (
            "#SBATCH --dependency=singleton",
            "job.sh:2: #SBATCH --dependency: singleton: only afterok, afterany and afternotok",
        ),
        (
            "#SBATCH --partition=gpu",
            "job.sh:2: #SBATCH --partition: the facility has no partitions",
        ),
        ("#SBATCH --frobnicate=1", "job.sh:2: #SBATCH --frobnicate: not understood here"),
        ("#SBATCH -Z", "job.sh:2: #SBATCH -Z: not understood here"),
        ("#SBATCH gpus=2", "job.sh:2: #SBATCH gpus=2: expected an option"),
        ("#SBATCH --gpus", "job.sh:2: #SBATCH --gpus: needs a value"),
        ("#SBATCH --gpus=two", "job.sh:2: #SBATCH --gpus: 'two' is not a whole number"),
        ("#SBATCH --gres=shard:2", "job.sh:2: #SBATCH --gres: only GPUs are understood in --gres"),
        ("#SBATCH --time=UNLIMITED", "job.sh:2: #SBATCH --time: UNLIMITED means no time limit"),
        ("#SBATCH --mem=0", "job.sh:2: #SBATCH --mem: 0 asks for all of a node's memory"),
        ("#SBATCH --nodes=2-4", "job.sh:2: #SBATCH --nodes: 2-4: a range of node counts"),
        (
            "#SBATCH --ntasks=4",
            "job.sh:2: #SBATCH --ntasks=4: a job here runs its script once per node",
        ),
        (
            "#SBATCH --gpus=3 --nodes=2",
            "job.sh:2: #SBATCH --gpus: 3 GPUs do not split evenly over 2 nodes",
        ),
        ("#SBATCH --job-name='unclosed", "job.sh:2: #SBATCH --job-name='unclosed: cannot be split"),
        (
            "#AIF --time-limit 30",
            "job.sh:2: #AIF --time-limit: 30 is ambiguous: write 30s, 30m or 30h",
        ),
        (
            "#AIF --recipe dutch-gpt-pretrain",
            "job.sh:2: #AIF --recipe: is a command-line option, not a directive",
        ),
        ("#AIF --gpu 2", "job.sh:2: #AIF --gpu: not understood here"),
        ("#AIF --preemptible=yes", "job.sh:2: #AIF --preemptible: takes no value"),
        ("#AIF -e NOVALUE", "job.sh:2: #AIF --env: 'NOVALUE' is not KEY=VALUE"),
        ("#AIF --gpus -1", "job.sh:2: #AIF --gpus: Input should be greater than or equal to 0"),
        (
            "#SBATCH --cpus-per-task=0",
            "job.sh:2: #SBATCH --cpus-per-task: Input should be greater than or equal to 1",
        ),
    ],
)
def test_a_directive_not_understood_is_an_error_naming_its_line(line: str, said: str) -> None:
    found = script_problems(line)
    assert any(p.startswith(said) for p in found), found


def test_every_directive_problem_is_named_in_line_order() -> None:
    found = script_problems("#SBATCH --exclusive", "#AIF -t 30", "#SBATCH -p gpu")
    assert [p.split(": ", 2)[:2] for p in found] == [
        ["job.sh:2", "#SBATCH --exclusive"],
        ["job.sh:3", "#AIF --time-limit"],
        ["job.sh:4", "#SBATCH --partition"],
    ]


def test_a_script_for_another_interpreter_is_refused() -> None:
    found = script_problems(first="#!/usr/bin/env python3")
    assert found == [
        "job.sh:1: #!/usr/bin/env python3: a batch script runs under bash here; run python3 as "
        "a command (aifactory submit -- python3 FILE)"
    ]


def test_output_lines_and_late_directives_are_warned_about_never_silently_dropped() -> None:
    text = "#!/bin/sh\n#SBATCH -o out.txt\n#SBATCH --error=err.txt\necho hi\n#SBATCH --gpus=8\n"
    source = jobfile.read_script(text, "job.sh")
    assert "gpus" not in source.fields, "read only from the leading comment block, as sbatch"
    assert [w.split(" is ")[0] for w in source.warnings[:2]] == [
        "job.sh:2: #SBATCH --output",
        "job.sh:3: #SBATCH --error",
    ]
    assert "`aifactory logs JOB`" in source.warnings[0]
    assert source.warnings[2].startswith(
        "job.sh:5: #SBATCH after the script's first command is not read"
    )


def test_every_submit_option_is_a_directive_or_refused_as_one_by_name() -> None:
    """#AIF takes `aifactory submit`'s options: a new option must be added to the table."""
    command = typer.main.get_command(app).commands["submit"]  # type: ignore[attr-defined]
    options = {o for p in command.params for o in [*p.opts, *p.secondary_opts] if o[0] == "-"}
    assert options <= directives.OUR_OPTIONS
    assert directives.OUR_OPTIONS - options == {"--help"}


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("job.yaml", "", "yaml"),
        ("job.YML", "", "yaml"),
        ("train.sh", "", "script"),
        ("train.sbatch", "", "script"),
        ("train.slurm", "", "script"),
        ("train", "#!/usr/bin/env bash\n", "script"),
        ("train", "#!/bin/sh\n", "script"),
        ("train.py", "#!/usr/bin/env python3\n", None),  # a program: run as a command
        ("data.txt", "hello\n", None),
    ],
)
def test_what_is_a_job_file(name: str, text: str, kind: str | None, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert jobfile.kind_of(path) == kind


# ---- `aifactory submit FILE` ------------------------------------------------------------------


def run(*args: str, server: LiveServer | None = None) -> Result:
    target = ["--url", server.url, "--token", server.admin_token] if server else NOWHERE
    return CliRunner().invoke(app, [*target, "submit", *args], env={"COLUMNS": "250"})


def dry_run(*args: str) -> dict[str, Any]:
    result = run("--dry-run", *args)
    assert result.exit_code == 0, result.output
    spec: dict[str, Any] = json.loads(result.stdout)
    return spec


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A YAML job file and a batch script in the current directory, as a user has them."""
    (tmp_path / "job.yaml").write_text(GOOD_YAML)
    (tmp_path / "train.sh").write_text(
        "#!/bin/bash\n#SBATCH --job-name=bert --gpus=2\n#SBATCH --time=30\n"
        "#AIF -e SEED=1\necho hallo $SEED\n"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.usefixtures("files")
def test_submit_reads_a_yaml_file_and_flags_override_it() -> None:
    spec = dry_run("--gpus", "4", "-t", "2h", "-e", "SEED=7", "--dataset", "x", "job.yaml")
    assert (spec["gpus"], spec["time_limit_s"], spec["datasets"]) == (4, 7200, ["x"])
    assert spec["env"] == {"SEED": "7", "MODE": "fast"}  # variable by variable
    assert (spec["name"], spec["cpus"], spec["memory_mb"]) == ("train-bert", 8, 32768)


@pytest.mark.usefixtures("files")
def test_submit_reads_a_batch_script_and_flags_override_it() -> None:
    spec = dry_run("train.sh")
    assert spec["script"].startswith("#!/bin/bash\n#SBATCH")
    assert (spec["name"], spec["gpus"], spec["time_limit_s"]) == ("bert", 2, 1800)
    assert spec["env"] == {"SEED": "1"}
    flagged = dry_run("--name", "mine", "--time-limit", "45m", "--script", "train.sh")
    assert (flagged["name"], flagged["time_limit_s"], flagged["gpus"]) == ("mine", 2700, 2)


@pytest.mark.usefixtures("files")
def test_a_command_that_is_no_job_file_stays_a_command() -> None:
    assert dry_run("--", "bash", "train.sh")["command"] == ["bash", "train.sh"]
    assert dry_run("--", "true")["command"] == ["true"]


@pytest.mark.usefixtures("files")
@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-t", "30", "--", "true"], "30 is ambiguous: write 30s, 30m or 30h"),
        (["--time-limit", "1:30", "job.yaml"], "1:30 is ambiguous"),
        (["missing.yaml"], "missing.yaml: no such job file"),
        (["--recipe", "dutch-gpt-pretrain", "job.yaml"], "a job file gives the command"),
        (["--script", "train.sh", "--", "true"], "not both"),
    ],
)
def test_submit_refuses_a_bare_number_and_a_missing_job_file(args: list[str], said: str) -> None:
    result = run("--dry-run", *args)
    assert result.exit_code == 2
    assert said in " ".join(result.output.split())


def test_submit_prints_every_problem_of_a_file_one_a_line(files: Path) -> None:
    (files / "bad.sh").write_text("#SBATCH --exclusive\n#SBATCH --qos=high\necho\n")
    result = run("bad.sh")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: bad.sh:1: #SBATCH --exclusive: whole nodes are not asked for here: ask the "
        "GPUs, CPUs and memory the job needs",
        "error: bad.sh:2: #SBATCH --qos: the facility has no QOS (fair share orders the "
        "queue): remove it",
    ]


def test_a_yaml_job_file_submitted_to_the_real_api(live_server: LiveServer, files: Path) -> None:
    (files / "job.yaml").write_text("command: [sleep, '1']\ngpus: 1\ntime_limit: 90m\nmemory: 2G\n")
    result = run("--json", "job.yaml", server=live_server)
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert job["state"] == "PENDING"
    assert (job["name"], job["command"], job["gpus"]) == ("job", ["sleep", "1"], 1)
    assert (job["time_limit_s"], job["memory_mb"]) == (5400, 2048)


@pytest.fixture(scope="module")
def facility(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FacilityProcess]:
    data = tmp_path_factory.mktemp("jobfile") / "data"
    data.mkdir()
    process = FacilityProcess(data, f"sqlite:///{data / 'af.db'}", virtual_gpus=4)
    process.start()
    yield process
    process.stop()
    process.kill_leftover_jobs()


@pytest.mark.slow
def test_a_slurm_batch_script_runs_on_a_real_facility(
    facility: FacilityProcess, tmp_path: Path
) -> None:
    """As a user runs it: `aifactory submit train.sh --wait` in a fresh interpreter."""
    script = tmp_path / "train.sh"
    script.write_text(
        "#!/bin/bash\n"
        "#SBATCH --job-name=slurm-style\n"
        "#SBATCH --gres=gpu:1\n"
        "#SBATCH --time=30\n"
        "#SBATCH --mem=512\n"
        "#SBATCH --output=slurm-%j.out\n"
        "#AIF -e GREETING=hallo\n"
        "\n"
        'echo "$GREETING from a batch script"\n'
    )
    assert facility.token is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIFACTORY_")}
    env |= {"AIFACTORY_URL": facility.url, "AIFACTORY_TOKEN": facility.token}
    done = subprocess.run(
        [sys.executable, "-m", "aifactory", "submit", "--json", "--wait", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "#SBATCH --output is ignored" in done.stderr  # said, not silently dropped
    job = json.loads(done.stdout)
    assert (job["state"], job["name"], job["gpus"]) == ("SUCCEEDED", "slurm-style", 1)
    assert (job["time_limit_s"], job["memory_mb"]) == (1800, 512)
    with facility.client() as api:
        assert api.logs(job["id"])["text"] == "hallo from a batch script\n"
