"""Directive lines of a batch script: ours (`#AIF --gpus 2`) and Slurm's (`#SBATCH --gpus=2`).

They are read as sbatch reads them: only from the script's leading comment block (the lines
before its first command); a directive after that is not read, and a warning says so. `#AIF`
takes `aifactory submit`'s own options; `#SBATCH` the common Slurm options, translated
(docs/jobfiles.md has the table). What is not understood is an error naming the line, never
skipped: a job that runs with less than its script asked for is worse than one that does not
start. Options that change nothing about how the job runs (`--output`, `--mail-user`) are
dropped with a warning; `--mail-type` with an end (END, FAIL, ALL…) asks to be told of the
end. Where both kinds set a field, `#AIF` wins (it is written for this facility); among lines
of one kind the later wins, as with sbatch.

Words: a *field* is named as the API's `JobSubmit` names it (`gpus`, `time_limit_s`).
Pure: the script's text in; fields, the line each came from, warnings and problems out.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aifactory.cli.units import megabytes
from aifactory.domain.durations import seconds, slurm_seconds

AIF, SBATCH = "#AIF", "#SBATCH"
SHELLS = frozenset({"sh", "bash"})
DOCS = "docs/jobfiles.md"


class Refused(ValueError):
    """An option of a directive line that cannot be honoured; the message says why."""


LISTS = ("datasets", "inputs", "after_ok", "after_any", "after_not_ok")  # repeatable


@dataclass
class Directives:
    """What a script's directives ask, by field, with the line that asked it."""

    fields: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    said: dict[str, str] = field(default_factory=dict)  # field → the directive, as written
    warnings: list[tuple[int, str]] = field(default_factory=list)  # (line, what)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, what)

    def put(self, name: str, value: Any, line: int, said: str) -> None:
        """Set a field (`env`: one variable more; a list field: one item more)."""
        if name == "env":
            value = {**self.fields.get("env", {}), **value}
        elif name in LISTS:
            value = [*self.fields.get(name, []), value]
        self.fields[name], self.lines[name], self.said[name] = value, line, said

    def over(self, later: Directives) -> Directives:
        """These directives with `later`'s over them: `env` variable by variable, any other
        field as a whole."""
        fields = {**self.fields, **later.fields}
        if "env" in self.fields and "env" in later.fields:
            fields["env"] = {**self.fields["env"], **later.fields["env"]}
        return Directives(
            fields,
            {**self.lines, **later.lines},
            {**self.said, **later.said},
            sorted(self.warnings + later.warnings),
            sorted(self.problems + later.problems),
        )


def read(text: str, name: str) -> Directives:
    """The directives of the script `text` (the file `name`, for messages)."""
    slurm, ours = Directives(), Directives()
    problems = _shebang(text, name)
    for number, line, leading in _comment_lines(text):
        kind = next((k for k in (AIF, SBATCH) if _is_directive(line, k)), None)
        if kind is None:
            continue
        if not leading:
            ours.warnings.append(
                (
                    number,
                    f"{name}:{number}: {kind} after the script's first command is not read "
                    "(sbatch reads none there either): move it up",
                )
            )
            continue
        target = ours if kind == AIF else slurm
        try:
            _read_line(line.removeprefix(kind), kind, (name, number), target)
        except Refused as exc:
            target.problems.append((number, f"{name}:{number}: {exc}"))
    _finish_slurm(slurm, name)
    found = slurm.over(ours)
    found.problems = sorted(problems + found.problems)
    return found


def _comment_lines(text: str) -> Iterator[tuple[int, str, bool]]:
    """(number, line, in the leading comment block) for each comment line of the script."""
    leading = True
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            leading = False
        elif stripped:
            yield number, line, leading


def _is_directive(line: str, kind: str) -> bool:
    """sbatch's rule: the prefix at the very start of the line, then a space or the end."""
    return line.startswith(kind) and line[len(kind) : len(kind) + 1] in ("", " ", "\t")


def interpreter(first_line: str) -> str | None:
    """The program a `#!` line names (`#!/usr/bin/env bash` → bash); None without one."""
    words = first_line[2:].split() if first_line.startswith("#!") else []
    if not words:
        return None
    program = words[1] if words[0].endswith("/env") and len(words) > 1 else words[0]
    return program.rsplit("/", 1)[-1]


def _shebang(text: str, name: str) -> list[tuple[int, str]]:
    """The script runs under bash on the facility: another interpreter's #! is an error."""
    first = text.split("\n", 1)[0].strip()
    program = interpreter(first)
    if program is None or program in SHELLS:
        return []
    return [
        (
            1,
            f"{name}:1: {first}: a batch script runs under bash here; run {program} as a "
            f"command (aifactory submit -- {program} FILE)",
        )
    ]


def _read_line(rest: str, kind: str, at: tuple[str, int], into: Directives) -> None:
    """One directive line's options into `into`; Refused at the first one not honoured."""
    try:
        tokens = shlex.split(rest, comments=True)
    except ValueError as exc:
        raise Refused(f"{kind}{rest}: cannot be split into options ({exc})") from None
    table, short = (_OURS, _OURS_SHORT) if kind == AIF else (_SLURM, _SLURM_SHORT)
    for option, value in _options(tokens, short, table, kind):
        try:
            for name, found in table[option].apply(value):
                into.put(name, found, at[1], f"{kind} {option}")
        except ValueError as exc:  # Refused too
            raise Refused(f"{kind} {option}: {exc}") from None
        if table[option].note:
            into.warnings.append((at[1], f"{at[0]}:{at[1]}: {kind} {option} {table[option].note}"))


def _options(
    tokens: list[str], short: Mapping[str, str], table: Mapping[str, _Option], kind: str
) -> Iterator[tuple[str, str | None]]:
    """(long option, value) for each option of a line, as getopt reads them: `--opt=v`,
    `--opt v`, `-o v`, `-ov`. Refused at an option the table does not know."""
    rest = list(tokens)
    while rest:
        token = rest.pop(0)
        if token.startswith("--"):
            option, sep, value = token.partition("=")
            attached: str | None = value if sep else None
        elif token.startswith("-") and len(token) > 1:
            option, attached = short.get(token[:2], token[:2]), token[2:] or None
        else:
            raise Refused(f"{kind} {token}: expected an option (--name value)")
        known = table.get(option) or _refuse_unknown(option, kind)
        if known.takes_value and attached is None:
            if not rest:
                raise Refused(f"{kind} {option}: needs a value")
            attached = rest.pop(0)
        elif not known.takes_value and attached is not None:
            raise Refused(f"{kind} {option}: takes no value")
        yield option, attached


def _refuse_unknown(option: str, kind: str) -> _Option:
    reason = (_NOT_DIRECTIVES if kind == AIF else _SLURM_REFUSED).get(option)
    unknown = f"not understood here: remove it, or say what it asks as an #AIF line ({DOCS})"
    raise Refused(f"{kind} {option}: {reason or unknown}")


@dataclass(frozen=True)
class _Option:
    """How one option of a directive sets fields: `apply(value)` → (field, value) pairs."""

    apply: Callable[[str | None], list[tuple[str, Any]]]
    takes_value: bool = True
    note: str = ""  # a warning printed when it is read (an option dropped)


def _set(name: str, convert: Callable[[str], Any] = str) -> _Option:
    return _Option(lambda value: [(name, convert(value or ""))])


def _flag(name: str, value: Any) -> _Option:
    return _Option(lambda _: [(name, value)], takes_value=False)


def _whole(text: str) -> int:
    if not text.lstrip("-").isdigit():
        raise Refused(f"{text!r} is not a whole number")
    return int(text)


def _pair(text: str) -> dict[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise Refused(f"{text!r} is not KEY=VALUE")
    return {key: value}


# ---- #AIF: `aifactory submit`'s own options -----------------------------------------------
_OURS: dict[str, _Option] = {
    "--name": _set("name"),
    "--project": _set("project"),
    "--gpus": _set("gpus", _whole),
    "--nodes": _set("nodes", _whole),
    "--cpus": _set("cpus", _whole),
    "--memory-mb": _set("memory_mb", _whole),
    "--gpu-model": _set("gpu_model"),
    "--time-limit": _set("time_limit_s", seconds),
    "--env": _set("env", _pair),
    "--workdir": _set("working_dir"),
    "--network": _set("network"),
    "--preemptible": _flag("preemptible", True),
    "--not-preemptible": _flag("preemptible", False),
    "--notify": _flag("notify", True),
    "--one-block": _flag("one_block", True),
    "--priority": _set("priority", _whole),
    "--dataset": _set("datasets"),
    "--input": _set("inputs", _whole),
    "--array": _set("array"),
    "--after-ok": _set("after_ok", _whole),
    "--after-any": _set("after_any", _whole),
    "--after-not-ok": _set("after_not_ok", _whole),
    "--idempotency-key": _set("idempotency_key"),
    "--environment": _set("environment"),
    "--image": _set("image"),
}
_OURS_SHORT = {"-t": "--time-limit", "-e": "--env", "-d": "--dataset"}
_COMMAND_LINE_ONLY = "--recipe --config --from --python --script --dry-run --wait --no-wait --json"
_NOT_DIRECTIVES = {
    option: "is a command-line option, not a directive"
    for option in [*_COMMAND_LINE_ONLY.split(), "--help"]
}


# ---- #SBATCH: Slurm's common options, translated -------------------------------------------
def _gpus(text: str, name: str) -> list[tuple[str, Any]]:
    """`[model:]N` (--gpus, --gpus-per-node) → the count into `name`, and the model."""
    model, _, count = text.rpartition(":")
    found: list[tuple[str, Any]] = [(name, _whole(count))]
    return [*found, ("gpu_model", model)] if model else found


def _gres(text: str) -> list[tuple[str, Any]]:
    """`gpu[:model][:N]` (per node); other generic resources are not understood."""
    found: list[tuple[str, Any]] = []
    for item in text.split(","):
        kind, *rest = item.split(":")
        if kind != "gpu":
            raise Refused(f"only GPUs are understood in --gres, not {item!r}")
        if rest and not rest[-1].isdigit():
            rest.append("1")  # gpu:model asks one
        found += _gpus(":".join(rest) or "1", "gpus")
    return found


def _memory(text: str) -> int:
    mb = megabytes(text, bare="M")
    if mb == 0:
        raise Refused("0 asks for all of a node's memory here: give an amount, e.g. --mem=64G")
    return mb


_AFTER = {"afterok": "after_ok", "afterany": "after_any", "afternotok": "after_not_ok"}


def _dependencies(text: str) -> list[tuple[str, Any]]:
    """Slurm's `afterok:12:13,afterany:14` (all must hold): the ids are this facility's jobs.
    `?` (any one of them) and the other kinds (after, aftercorr, singleton) are refused."""
    if "?" in text:
        raise Refused("dependencies joined by '?' (any one of them) are not supported: use ','")
    found: list[tuple[str, Any]] = []
    for part in text.split(","):
        kind, _, ids = part.partition(":")
        if kind not in _AFTER or not ids:
            raise Refused(
                f"{part}: only afterok, afterany and afternotok with job ids are understood"
            )
        found += [(_AFTER[kind], _whole(job)) for job in ids.split(":")]
    return found


def _nodes(text: str) -> int:
    if "-" in text or "," in text:
        raise Refused(f"{text}: a range of node counts is not supported: give one number")
    return _whole(text)


_LOG_NOTE = (
    "is ignored: a job's output (stdout and stderr together) is kept in its log, read with "
    "`aifactory logs JOB`"
)
_MAIL_USER_NOTE = "is ignored: mail goes to the address on your account"
# Slurm's mail types that mean "tell me when it is over": the facility tells every end at once.
_END_MAIL = frozenset({"END", "FAIL", "ALL", "REQUEUE", "INVALID_DEPEND", "STAGE_OUT"})


def _mail_type(text: str) -> list[tuple[str, Any]]:
    """`--mail-type=END,FAIL` → notify of the job's end; NONE → not; BEGIN alone → nothing
    (the facility tells no starts)."""
    kinds = {kind.strip().upper() for kind in text.split(",") if kind.strip()}
    if "NONE" in kinds:
        return [("notify", False)]
    ends = kinds & _END_MAIL or {k for k in kinds if k.startswith("TIME_LIMIT")}
    return [("notify", True)] if ends else []


def _switches(text: str) -> list[tuple[str, Any]]:
    """`--switches=1`: inside one network block (a leaf switch). With `@max-time`, or more
    switches, Slurm itself gives way: here that is the scheduler's own preference for one
    block, so nothing is asked."""
    count, _, wait = text.partition("@")
    return [("one_block", True)] if _whole(count) == 1 and not wait else []


_SLURM: dict[str, _Option] = {
    "--gpus": _Option(lambda v: _gpus(v or "", "_gpus_total")),
    "--gpus-per-node": _Option(lambda v: _gpus(v or "", "gpus")),
    "--gres": _Option(lambda v: _gres(v or "")),
    "--time": _set("time_limit_s", slurm_seconds),
    "--mem": _set("memory_mb", _memory),
    "--mem-per-cpu": _set("_mem_per_cpu", _memory),
    "--cpus-per-task": _set("cpus", _whole),
    "--job-name": _set("name"),
    "--nodes": _set("nodes", _nodes),
    "--ntasks": _set("_ntasks", _whole),
    "--ntasks-per-node": _set("_ntasks_per_node", _whole),
    "--chdir": _set("working_dir"),
    "--account": _set("project"),
    "--dependency": _Option(lambda v: _dependencies(v or "")),
    "--array": _set("array"),
    "--output": _Option(lambda _: [], note=_LOG_NOTE),
    "--error": _Option(lambda _: [], note=_LOG_NOTE),
    "--mail-type": _Option(lambda v: _mail_type(v or "")),
    "--mail-user": _Option(lambda _: [], note=_MAIL_USER_NOTE),
    "--switches": _Option(lambda v: _switches(v or "")),
}
_SLURM_SHORT = {
    "-G": "--gpus",
    "-t": "--time",
    "-c": "--cpus-per-task",
    "-J": "--job-name",
    "-N": "--nodes",
    "-n": "--ntasks",
    "-D": "--chdir",
    "-A": "--account",
    "-o": "--output",
    "-e": "--error",
    "-a": "--array",
    "-d": "--dependency",
    "-p": "--partition",
    "-q": "--qos",
    "-C": "--constraint",
}
_SLURM_REFUSED = {
    "--partition": "the facility has no partitions: remove it (ask a GPU model with "
    "--gres=gpu:MODEL:N)",
    "--qos": "the facility has no QOS (fair share orders the queue): remove it",
    "--constraint": "node features are not asked for here: ask a GPU model with --gres=gpu:MODEL:N",
    "--exclusive": "whole nodes are not asked for here: ask the GPUs, CPUs and memory the "
    "job needs",
    "--export": "the job does not inherit your environment: set variables with #AIF -e KEY=VALUE",
}


def _finish_slurm(found: Directives, name: str) -> None:
    """What Slurm counts differently: --gpus for the whole job (here: per node), memory per
    CPU, and tasks (here: one per node, the script itself)."""
    nodes = found.fields.get("nodes", 1)
    _per_node_gpus(found, name, nodes)
    if "_mem_per_cpu" in found.fields:
        per_cpu = found.fields.pop("_mem_per_cpu")
        line = found.lines.pop("_mem_per_cpu")
        said = found.said.pop("_mem_per_cpu")
        if "memory_mb" in found.fields:
            found.problems.append(
                (line, f"{name}:{line}: {said}: give --mem or --mem-per-cpu, not both")
            )
        else:
            found.put("memory_mb", per_cpu * found.fields.get("cpus", 1), line, said)
    for pseudo, per_node in (("_ntasks", nodes), ("_ntasks_per_node", 1)):
        if pseudo not in found.fields:
            continue
        asked, line, said = (
            found.fields.pop(pseudo),
            found.lines.pop(pseudo),
            found.said.pop(pseudo),
        )
        if asked != per_node:
            found.problems.append(
                (
                    line,
                    f"{name}:{line}: {said}={asked}: a job here runs its script once per node "
                    "(there is no srun): ask CPUs with --cpus-per-task and start more "
                    "processes yourself (torchrun, mpirun)",
                )
            )


def _per_node_gpus(found: Directives, name: str, nodes: int) -> None:
    """Slurm's --gpus counts the whole job's GPUs; a job here asks them per node."""
    if "_gpus_total" not in found.fields:
        return
    total = found.fields.pop("_gpus_total")
    line, said = found.lines.pop("_gpus_total"), found.said.pop("_gpus_total")
    if "gpus" in found.fields:
        found.problems.append(
            (line, f"{name}:{line}: {said}: give --gpus or GPUs per node, not both")
        )
    elif nodes > 0 and total % nodes:
        found.problems.append(
            (line, f"{name}:{line}: {said}: {total} GPUs do not split evenly over {nodes} nodes")
        )
    else:
        found.put("gpus", total // max(nodes, 1), line, said)  # nodes 0: the API refuses it


# Every `aifactory submit` option an #AIF line may name, to be honoured or refused by name
# (tests/cli/test_jobfile.py checks it against the command's own options).
OUR_OPTIONS = frozenset({*_OURS, *_OURS_SHORT, *_NOT_DIRECTIVES})
