"""The dashboard: the facility at a glance, for everyone signed in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from aifactory.faces.state import StateDep
from aifactory.services import dashboard
from aifactory.web import charts
from aifactory.web.session import Signed
from aifactory.web.templating import render

router = APIRouter(include_in_schema=False)
WINDOWS = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}


@router.get("/")
def home(request: Request, signed: Signed, state: StateDep, window: str = "24h") -> Response:
    span = WINDOWS.get(window, WINDOWS["24h"])
    with state.db.read() as session:
        view = dashboard.dashboard(session, signed.principal, now=state.clock(), window_s=span)
    hours = [charts.Series("GPU utilisation", view.utilisation_pct)]
    context: dict[str, Any] = {
        "view": view,
        "window": window if window in WINDOWS else "24h",
        "windows": list(WINDOWS),
        "utilisation": charts.line_chart(
            hours, title="Facility GPU utilisation", unit=" %", y_max=100.0
        ),
        "queue": charts.line_chart(
            [charts.Series("jobs waiting", view.queue_length)],
            title="Jobs waiting",
            step=False,
        ),
        "waits": charts.line_chart(
            [charts.Series("mean wait (min)", view.mean_wait_min)],
            title="Mean wait before start",
            unit=" min",
        ),
        "energy": charts.bar_chart(view.energy_kwh, title="Energy used", unit=" kWh"),
        "gauges": [
            (a, charts.gauge(a.used_h, a.total_h, title=f"{a.name}: GPU-hours left", unit=" h"))
            for a in view.allocations
        ],
    }
    return render(request, "dashboard.html", signed, title="Dashboard", **context)
