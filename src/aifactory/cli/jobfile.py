"""Job files: `aifactory submit job.yaml` and `aifactory submit script.sh` (docs/jobfiles.md).

A YAML job file is a mapping of the API's own `JobSubmit` fields, plus `time_limit` and
`memory` written with their units (`2h`, `16G`); a batch script is the job's `script`, with
its `#AIF`/`#SBATCH` directive lines (`directives`). Either is read into a body for
`POST /jobs`, with the line each field came from; flags given on the command line go over it
(`merged`); `check` then judges the whole with `JobSubmit` itself, so a file is refused
exactly where the API would refuse it, but with the file's line and the field as the file
wrote it (`job.yaml:7: gpus: ...`). Every problem is reported at once: those met in reading
the file (syntax, unknown keys, a duration without its unit), else all of the API's.

Pure: no HTTP. Loaded only for a job file, since PyYAML and the API's input types add to the
start-up of every other command (issue 16).
"""

from __future__ import annotations

import difflib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from aifactory.cli import directives
from aifactory.cli.units import megabytes
from aifactory.domain.durations import seconds
from aifactory.faces.inputs import JobSubmit
from aifactory.faces.wording import reason_of

Kind = Literal["yaml", "script"]
Loc = tuple[str | int, ...]
YAML_SUFFIXES = frozenset({".yaml", ".yml"})
SCRIPT_SUFFIXES = frozenset({".sh", ".bash", ".sbatch", ".slurm"})
# Keys a YAML file may use besides JobSubmit's own: with their unit, as people write them.
WITH_UNITS = {"time_limit": "time_limit_s", "memory": "memory_mb"}
NOT_A_MAPPING = (
    f"a job file is a mapping of fields, one a line: `command: python train.py` ({directives.DOCS})"
)
# JobSubmit's text fields: a YAML scalar is taken as written (`name: 2024` is "2024", not 2024).
TEXT = frozenset(
    {
        "name",
        "project",
        "gpu_model",
        "working_dir",
        "network",
        "idempotency_key",
        "environment",
        "image",
    }
)


class JobFileError(Exception):
    """A job file that cannot be submitted; `problems` are lines `file:line: what`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class JobFile:
    """A job file read: its fields (JobSubmit's names) and where each was written."""

    path: str  # as the user named it
    fields: dict[str, Any]
    lines: dict[Loc, int] = field(default_factory=dict)  # a field, or an item of it → line
    said: dict[str, str] = field(default_factory=dict)  # field → as the file wrote it
    warnings: tuple[str, ...] = ()

    def line_of(self, loc: Loc) -> int | None:
        """The line of the most precise part of `loc` the file wrote; None: none of it."""
        return next(
            (self.lines[loc[:end]] for end in range(len(loc), 0, -1) if loc[:end] in self.lines),
            None,
        )

    def where(self, loc: Loc) -> str:
        """`file:line` of `loc` (line_of), or the file alone."""
        line = self.line_of(loc)
        return self.path if line is None else f"{self.path}:{line}"


def kind_of(path: Path) -> Kind | None:
    """A YAML job file by its name; a batch script by its name or its bash/sh `#!` line."""
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        return "yaml"
    if suffix in SCRIPT_SUFFIXES:
        return "script"
    try:
        with path.open(encoding="utf-8") as opened:
            first = opened.readline(256)
    except (OSError, UnicodeDecodeError):
        return None
    return "script" if directives.interpreter(first) in directives.SHELLS else None


def read(path: Path, kind: Kind) -> JobFile:
    """The job file at `path`; JobFileError with every problem found in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JobFileError([f"{path}: cannot be read: {exc}"]) from None
    return read_yaml(text, str(path)) if kind == "yaml" else read_script(text, str(path))


def read_script(text: str, name: str) -> JobFile:
    """A batch script: the whole file is the job's script; its directives ask the rest."""
    found = directives.read(text, name)
    if found.problems:
        raise JobFileError([problem for _, problem in found.problems])
    fields = {"name": Path(name).name[:128], **found.fields, "script": text}
    lines: dict[Loc, int] = {(key,): line for key, line in found.lines.items()}
    return JobFile(name, fields, lines, found.said, tuple(said for _, said in found.warnings))


def read_yaml(text: str, name: str) -> JobFile:
    """A YAML job file: one mapping of fields (module docstring)."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if not isinstance(root, yaml.MappingNode):
            line = root.start_mark.line + 1 if root is not None else 1
            raise JobFileError([f"{name}:{line}: {NOT_A_MAPPING}"])
        return _fields(loader, root, name)
    except yaml.MarkedYAMLError as exc:
        raise JobFileError([_yaml_problem(exc, name)]) from None
    except yaml.YAMLError as exc:
        raise JobFileError([f"{name}: not valid YAML: {exc}"]) from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.MarkedYAMLError, name: str) -> str:
    """PyYAML's complaint at its line, with what it was reading and from where (an unclosed
    quote is found at the end of the file, but began on an earlier line)."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    said = f"{name}:{line}: not valid YAML: {exc.problem}"
    if exc.context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
        said += f" ({exc.context} from line {exc.context_mark.line + 1})"
    return said


def _fields(loader: yaml.SafeLoader, root: yaml.MappingNode, name: str) -> JobFile:
    """Each key of the mapping as its JobSubmit field, with the line it is on."""
    fields: dict[str, Any] = {}
    lines: dict[Loc, int] = {}
    said: dict[str, str] = {}
    problems: list[str] = []
    for key_node, value_node in root.value:
        key, line = str(key_node.value), key_node.start_mark.line + 1
        target = WITH_UNITS.get(key, key)
        try:
            if target not in JobSubmit.model_fields:
                raise ValueError(_unknown(key))
            if target in said:
                first = lines[(target,)]
                raise ValueError(f"{said[target]} is given already, on line {first}")
            value = _value(loader, target, key, value_node)
        except ValueError as exc:
            problems.append(f"{name}:{line}: {key}: {exc}")
            continue
        lines[(target,)], said[target] = line, key
        lines.update(_item_lines(value_node, (target,)))
        if value is not None:
            fields[target] = value
    if problems:
        raise JobFileError(problems)
    return JobFile(name, {"name": Path(name).stem[:128], **fields}, lines, said)


def _value(loader: yaml.SafeLoader, target: str, key: str, node: yaml.Node) -> Any:
    """A YAML value as the API takes it; None leaves the API's default. ValueError says why."""
    scalar = node.value if isinstance(node, yaml.ScalarNode) else None
    value = loader.construct_object(node, deep=True)
    if value is None and key not in WITH_UNITS:
        return None
    if key in WITH_UNITS:  # as written: YAML would read 1:30:00 as a number (sexagesimal)
        if scalar is None:
            raise ValueError("write it with its unit on one line, e.g. 2h or 16G")
        return seconds(scalar) if key == "time_limit" else megabytes(scalar)
    if target == "command" and scalar is not None:
        return shlex.split(scalar)  # as written (`command: true`); ValueError: a lone quote
    if target in TEXT and scalar is not None:
        return scalar
    if target in ("command", "datasets") and isinstance(node, yaml.SequenceNode):
        return [_as_written(loader, item) for item in node.value]
    if target == "env" and isinstance(node, yaml.MappingNode):
        return {str(_as_written(loader, k)): _as_written(loader, v) for k, v in node.value}
    return value


def _as_written(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    """A scalar as its text (`SEED: 42` sets "42"); anything else as YAML builds it, for the
    API's check to refuse."""
    if isinstance(node, yaml.ScalarNode):
        return node.value
    return loader.construct_object(node, deep=True)


def _item_lines(node: yaml.Node, loc: Loc) -> dict[Loc, int]:
    """The line of each item of a list, and of each key of a mapping, under `loc`."""
    found: dict[Loc, int] = {}
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found[(*loc, index)] = item.start_mark.line + 1
    elif isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            found[(*loc, str(key.value))] = key.start_mark.line + 1
    return found


def _unknown(key: str) -> str:
    known = sorted({*JobSubmit.model_fields, *WITH_UNITS} - set(WITH_UNITS.values()))
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else f"; the fields are {', '.join(known)}"
    return f"not a field of a job file{hint}"


def merged(source: JobFile, given: Mapping[str, Any]) -> dict[str, Any]:
    """The file's fields with the flags given on the command line over them: `env` variable by
    variable, any other field as a whole (`--dataset x` replaces the file's datasets)."""
    body = dict(source.fields)
    for name, value in given.items():
        body[name] = {**body.get("env", {}), **value} if name == "env" else value
    return body


def check(body: dict[str, Any], source: JobFile, flags: Mapping[str, str]) -> None:
    """Judge `body` with the API's JobSubmit; JobFileError names where each problem was
    written: the flag (`flags`: field → the flag given) or the file's line."""
    try:
        JobSubmit.model_validate_json(json.dumps(body, default=str))
    except ValidationError as exc:
        found = [_problem(dict(e), source, flags) for e in exc.errors(include_url=False)]
        raise JobFileError([said for _, said in sorted(found, key=lambda p: p[0])]) from None


def _problem(error: dict[str, Any], source: JobFile, flags: Mapping[str, str]) -> tuple[int, str]:
    """(the line, or 0, and the problem as the user wrote it: by flag, or by file and line)."""
    loc: Loc = tuple(error["loc"])
    reason = reason_of(error)
    if not loc:
        return 0, f"{source.path}: {reason}"
    name = str(loc[0])
    if name == "time_limit_s":
        reason += " (seconds)"
    if name in flags:
        return 0, f"{flags[name]}: {reason}"
    shown = source.said.get(name, name) + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:]
    )
    return source.line_of(loc) or 0, f"{source.where(loc)}: {shown}: {reason}"
