"""The scheduler what-if pages (admins and operators): ask for a replay, watch it, compare.

`/whatif` holds the form and the runs so far; posting it queues a run (services.whatif) and
goes to `/whatif/{id}`, whose status part htmx fetches every second until the run is done,
then shows both configurations' figures side by side and one bar chart per headline figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from aifactory.domain.permissions import Action
from aifactory.errors import AifactoryError, InvalidInput
from aifactory.faces.state import StateDep
from aifactory.services import whatif
from aifactory.services.login import SignedIn
from aifactory.services.whatif import Ask, Outcome, Run, Setting
from aifactory.sim.replay import POLICIES
from aifactory.web import charts
from aifactory.web.session import Signed, SignedPost
from aifactory.web.templating import duration, number, render

router = APIRouter(include_in_schema=False)
HOUR = 3600.0
DEFAULTS = {"workload": "itp-merged", "jobs": "300", "gpus": "128"}
DEFAULT_POLICIES = {"a": "fairshare", "b": "slurm"}
POLICY_NOTES = {
    "fifo": "first come, first served, no backfill",
    "easy": "first come, first served with EASY backfill",
    "slurm": "Slurm's multifactor priority and backfill",
    "fairshare": "this facility's default",
    "oracle": "knows true runtimes: a bound, simulator only",
}


class WhatIfForm(BaseModel):
    """The form as typed: every field text, so a wrong one is shown next to its input."""

    workload: str = ""
    jobs: str = ""
    gpus: str = ""
    a_policy: str = ""
    a_backfill: str = ""
    a_fairness_weight: str = ""
    a_half_life_h: str = ""
    b_policy: str = ""
    b_backfill: str = ""
    b_fairness_weight: str = ""
    b_half_life_h: str = ""


@router.get("/whatif")
def whatif_page(request: Request, signed: Signed) -> Response:
    runs = whatif.list_runs(signed.principal)
    form = WhatIfForm(**DEFAULTS, a_policy=DEFAULT_POLICIES["a"], b_policy=DEFAULT_POLICIES["b"])
    return _form_page(request, signed, form, runs=runs)


@router.post("/whatif")
def start_run(
    request: Request,
    signed: SignedPost,
    state: StateDep,
    form: Annotated[WhatIfForm, Form()],
) -> Response:
    signed.principal.authorize(Action.SCHEDULER_WHATIF)  # before saying what is wrong in it
    try:
        ask = parse(form)
        with state.db.read() as session:
            run = whatif.start(session, signed.principal, ask, now=state.clock())
    except AifactoryError as exc:
        errors = {_form_field(exc.field): exc.message}
        runs = whatif.list_runs(signed.principal)
        return _form_page(request, signed, form, runs=runs, errors=errors, status_code=422)
    return RedirectResponse(f"/whatif/{run.id}", status_code=303)


@router.get("/whatif/{run_id}")
def run_page(request: Request, signed: Signed, run_id: int) -> Response:
    run = whatif.get_run(signed.principal, run_id)
    title = f"What-if run {run.id}"
    return render(request, "whatif/run.html", signed, title=title, run=run, **_results(run))


@router.get("/whatif/{run_id}/status")
def run_status(request: Request, signed: Signed, run_id: int) -> Response:
    """The run's state, and its comparison once done (htmx polls this until then)."""
    run = whatif.get_run(signed.principal, run_id)
    return render(request, "whatif/status.html", signed, run=run, **_results(run))


def _form_page(
    request: Request,
    signed: SignedIn,
    form: WhatIfForm,
    *,
    runs: list[Run],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "whatif/index.html",
        signed,
        status_code=status_code,
        title="Scheduler what-if",
        form=form,
        errors=errors or {},
        runs=runs,
        workloads=whatif.WORKLOADS,
        trace_gpus=whatif.SCENARIOS,
        policies=[(name, POLICY_NOTES.get(name, "")) for name in POLICIES],
        max_jobs=whatif.MAX_JOBS,
    )


def _form_field(field: str | None) -> str:
    """The service's field ("a.policy") as the form's input ("a_policy")."""
    return (field or "workload").replace(".", "_")


# ---- the form, parsed ----------------------------------------------------------------------


def parse(form: WhatIfForm) -> Ask:
    return Ask(
        workload=form.workload.strip(),
        jobs=_integer(form.jobs, "jobs"),
        gpus=_integer(form.gpus, "gpus") if form.gpus.strip() else None,
        a=_setting(form, "a"),
        b=_setting(form, "b"),
    )


def _setting(form: WhatIfForm, side: str) -> Setting:
    typed = form.model_dump()

    def text(name: str) -> str:
        return str(typed[f"{side}_{name}"]).strip()

    backfill = {"": None, "on": True, "off": False}.get(text("backfill"))
    if text("backfill") not in ("", "on", "off"):
        raise InvalidInput("choose on, off or the policy's own", field=f"{side}.backfill")
    return Setting(
        policy=text("policy"),
        backfill=backfill,
        fairness_weight=_decimal(text("fairness_weight"), f"{side}.fairness_weight"),
        half_life_h=_decimal(text("half_life_h"), f"{side}.half_life_h"),
    )


def _integer(text: str, field: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput("must be a whole number", field=field) from None


def _decimal(text: str, field: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInput("must be a number", field=field) from None


# ---- the comparison ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    label: str
    kind: str  # time (seconds), share (of 1), ratio, count, ms
    better: str  # lower or higher
    chart: bool = False


METRICS = (
    Metric("utilisation", "GPU utilisation", "share", "higher", chart=True),
    Metric("avg_wait", "Mean wait", "time", "lower", chart=True),
    Metric("p95_wait", "95th percentile wait", "time", "lower", chart=True),
    Metric("avg_jct", "Mean job completion time", "time", "lower"),
    Metric("p95_jct", "95th percentile job completion time", "time", "lower"),
    Metric("avg_bsld", "Mean bounded slowdown", "ratio", "lower", chart=True),
    Metric("jain_fairness", "Fairness (Jain's index, 1 is fair)", "ratio", "higher", chart=True),
    Metric("worst_tenant_wait_ratio", "Worst project's mean wait ÷ mean wait", "ratio", "lower"),
    Metric("makespan", "Makespan (first submit to last end)", "time", "lower"),
    Metric("preemptions", "Preemptions", "count", "lower"),
    Metric("lost_gpu_hours", "GPU-hours lost to preemption", "ratio", "lower"),
    Metric("decision_p99_ms", "Scheduler decision time, 99th percentile", "ms", "lower"),
)


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    a: str
    b: str
    change: str  # B against A
    winner: str  # "a", "b" or "" (even)


def _results(run: Run) -> dict[str, Any]:
    if run.state != "done" or len(run.outcomes) != 2:
        return {"lines": [], "bars": [], "busy": None}
    a, b = run.outcomes
    lines = [_line(m, a.figures[m.key], b.figures[m.key]) for m in METRICS]
    lines.append(
        _line(
            Metric("unfinished", "Jobs never started", "count", "lower"), a.unfinished, b.unfinished
        )
    )
    return {
        "lines": lines,
        "bars": [(m.label, _bars(m, a, b)) for m in METRICS if m.chart],
        "busy": _busy_chart(a, b),
    }


def _line(metric: Metric, a: float, b: float) -> Line:
    if abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0):
        winner = ""
    else:
        lower = "a" if a < b else "b"
        winner = lower if metric.better == "lower" else ("b" if lower == "a" else "a")
    change = "—" if a == 0 else f"{(b - a) / abs(a):+.0%}".replace("-", "−")
    return Line(metric.label, _shown(metric, a), _shown(metric, b), change, winner)


def _shown(metric: Metric, value: float) -> str:
    if metric.kind == "time":
        return duration(value)
    if metric.kind == "share":
        return f"{value:.1%}"
    if metric.kind == "count":
        return f"{value:.0f}"
    if metric.kind == "ms":
        return f"{number(value, 2)} ms"
    return number(value, 2)


def _bars(metric: Metric, a: Outcome, b: Outcome) -> charts.Svg:
    values = [a.figures[metric.key], b.figures[metric.key]]
    unit, scale = _unit(metric, max(values))
    bars = [(f"{o.side}: {o.label}", v / scale) for o, v in zip((a, b), values, strict=True)]
    return charts.bar_chart(bars, title=metric.label, unit=unit, height=200)


def _unit(metric: Metric, top: float) -> tuple[str, float]:
    if metric.kind == "share":
        return " %", 0.01
    if metric.kind == "time":
        if top >= 2 * 86400:
            return " d", 86400.0
        return (" h", HOUR) if top >= 2 * HOUR else (" min", 60.0)
    return "", 1.0


def _busy_chart(a: Outcome, b: Outcome) -> charts.Svg:
    series = [
        charts.Series(f"{o.side}: {o.label}", [(h, 100 * share) for h, share in o.busy])
        for o in (a, b)
    ]
    return charts.line_chart(
        series,
        title="GPUs busy over the replay (hours since the first submit)",
        unit=" %",
        y_max=100.0,
        time_axis=False,
    )
