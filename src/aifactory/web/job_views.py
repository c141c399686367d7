"""What the jobs pages show, worked out without a request or a database: the submit form read
into the API's own `JobSubmit` input, its errors placed next to the fields, and the times a
job waited and ran.

The form is one flat set of strings; the API takes typed JSON. `submission_input` only changes
the shape (a command line into argv, KEY=VALUE lines into a dict, digits into numbers) and
leaves every judgement to `JobSubmit`, so the page says what the API would say. A value that is
not a number is handed over as typed: the strict schema then refuses it in its own words.
The time limit is the exception: the form takes a duration with its unit (90m, 2h, 1:30:00),
read by the rule the CLI and job files follow (`domain.durations`: a bare number is refused),
and the API's `time_limit_s` errors are shown at it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from aifactory.domain.durations import DurationError, seconds
from aifactory.domain.jobs import TERMINAL, JobState
from aifactory.errors import InvalidInput
from aifactory.faces.wording import reason_of as api_reason  # the API's one wording of errors
from aifactory.services.job_view import JobView

INTEGERS = ("gpus", "nodes", "cpus", "memory_mb", "priority")
TEXTS = ("name", "project", "gpu_model", "working_dir", "idempotency_key")
TIME_LIMIT = "time_limit"  # the form's field: a duration; the API's is time_limit_s
# Every field the form shows an error next to; any other error is shown above the form.
FIELDS = frozenset(
    {*INTEGERS, *TEXTS, TIME_LIMIT, "command", "script", "preemptible", "datasets", "env"}
)
DEFAULTS = {
    "name": "job",
    "gpus": "1",
    "nodes": "1",
    "cpus": "1",
    "memory_mb": "1024",
    TIME_LIMIT: "1h",
    "priority": "0",
}
_INTEGER = re.compile(r"^[+-]?\d{1,100}$")
GENERAL = ""  # the errors key for what belongs to no one field


def submission_input(form: Mapping[str, str]) -> dict[str, Any]:
    """The form as the JSON body the API's `JobSubmit` takes. An empty optional field is left
    out (the schema's default then holds); a malformed line raises InvalidInput on its field."""
    body: dict[str, Any] = {}
    for key in TEXTS:
        if value := form.get(key, "").strip():
            body[key] = value
    for key in INTEGERS:
        if value := form.get(key, "").strip():
            body[key] = int(value) if _INTEGER.match(value) else value
    if limit := form.get(TIME_LIMIT, "").strip():
        body["time_limit_s"] = time_limit_s(limit)
    body.update(_program(form))
    if (preemptible := form.get("preemptible", "")) in ("yes", "no"):
        body["preemptible"] = preemptible == "yes"
    if datasets := [d.strip() for d in form.get("datasets", "").split(",") if d.strip()]:
        body["datasets"] = datasets
    if env := environment(form.get("env", "")):
        body["env"] = env
    return body


def _program(form: Mapping[str, str]) -> dict[str, Any]:
    """What to run: a command line (split as a shell would, never run by one) or a script."""
    found: dict[str, Any] = {}
    if line := form.get("command", "").strip():
        try:
            found["command"] = shlex.split(line)
        except ValueError as exc:  # unbalanced quotes
            raise InvalidInput(f"cannot be split into arguments: {exc}", field="command") from None
    if form.get("script", "").strip():
        found["script"] = form["script"].replace("\r\n", "\n")
    return found


def time_limit_s(text: str) -> int:
    """The form's duration in seconds, or InvalidInput at the field saying how to write it."""
    try:
        return seconds(text)
    except DurationError as exc:
        raise InvalidInput(str(exc), field=TIME_LIMIT) from None


def environment(text: str) -> dict[str, str]:
    """KEY=VALUE lines (blank lines skipped); the schema judges the names."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise InvalidInput(f"line {number}: expected KEY=VALUE", field="env")
        found[key.strip()] = value
    return found


def field_errors(exc: ValidationError) -> dict[str, str]:
    """The schema's errors by form field, worded as the API words them. A check of the whole
    body (command or script) is shown at the command."""
    errors: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        field = str(loc[0]) if loc else "command"
        reason = api_reason(dict(error))
        if field == "time_limit_s":  # the API's figure is seconds; the field takes a duration
            field, reason = TIME_LIMIT, f"{reason} (seconds)"
        errors.setdefault(field if field in FIELDS else GENERAL, reason)
    return errors


def error_field(field: str | None) -> str:
    """Where a service error goes on the form (its `field`, when the form has one)."""
    field = TIME_LIMIT if field == "time_limit_s" else field
    return field if field in FIELDS else GENERAL


@dataclass(frozen=True, slots=True)
class Times:
    """How long a job waited before it started and how long it ran (so far, while it runs)."""

    waited_s: float
    ran_s: float | None  # None: it never started


def times(job: JobView, now: float) -> Times:
    ended = job.ended_at if job.ended_at is not None else now
    if job.started_at is None:
        return Times(ended - job.submitted_at, None)
    return Times(job.started_at - job.submitted_at, ended - job.started_at)


def is_terminal(job: JobView) -> bool:
    return JobState(job.state) in TERMINAL


@dataclass(frozen=True, slots=True)
class Slice:
    """One node's part of a job's placement."""

    node: str
    gpus: int
    gpu_ids: str
    cpus: int
    memory_mb: int


def placement(job: JobView) -> list[Slice]:
    """The job's part of each node, by node."""
    return [
        Slice(node, share.gpus, ", ".join(share.gpu_ids), share.cpus, share.memory_mb)
        for node, share in sorted(job.placement.items())
    ]


def command_line(job: JobView) -> str:
    """The argv as one line that the form's command field splits back into the same argv;
    an argument holding single quotes (Python's print('…')) is shown in double quotes."""
    return " ".join(_quoted(arg) for arg in job.command)


def _quoted(arg: str) -> str:
    if "'" in arg and not any(c in arg for c in '"\\$`'):
        return f'"{arg}"'
    return shlex.quote(arg)
