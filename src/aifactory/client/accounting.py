"""The SDK's accounting calls: programmes, calls, proposals, allocations, usage, invoices and
funder reports. `Client` mixes them in; they use its plumbing (`_call`, `_download`).

Units as at the API: moments are ISO 8601 (a `datetime`, or text; without an offset the API
reads them as UTC), GPU time is GPU-hours, money is euros as text ("2.50"). JSON comes back as
dicts and lists; PDF, CSV and chart files as bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aifactory.client.plumbing import Plumbing

Json = dict[str, Any]
Moment = datetime | str
# The funder report's charts, as GET /reports/funder/charts/{chart}.{png|svg} names them.
CHARTS = ("gpu_hours_by_programme", "gpu_hours_by_org_kind", "pool_share", "waiting_time")


def iso(moment: Moment) -> str:
    return moment.isoformat() if isinstance(moment, datetime) else moment


def _some(body: dict[str, Any]) -> dict[str, Any]:
    """The body without the fields left out (None), so the API's defaults apply."""
    return {k: v for k, v in body.items() if v is not None}


class AccountingCalls(Plumbing):
    # ---- programmes and calls --------------------------------------------------------
    def programmes(self) -> list[Json]:
        result: list[Json] = self._call("GET", "/programmes")
        return result

    def create_programme(self, name: str, spec: Json) -> Json:
        """`spec` takes the API's programme fields (title, eligible_kinds, gpu_tariffs...)."""
        result: Json = self._call("POST", "/programmes", json={**spec, "name": name})
        return result

    def update_programme(self, name: str, spec: Json) -> Json:
        """Replace everything about programme `name` but its name."""
        result: Json = self._call("PUT", f"/programmes/{name}", json=spec)
        return result

    def calls(self) -> list[Json]:
        result: list[Json] = self._call("GET", "/calls")
        return result

    def create_call(
        self,
        name: str,
        *,
        programme: str,
        title: str,
        opens_at: Moment,
        closes_at: Moment,
        budget_gpu_hours: float,
        terms: Json | None = None,
    ) -> Json:
        """Open a call; `terms` its access mode and settings (access_mode, ceiling_gpu_hours,
        min_days, max_days, cutoff_days, funding: see the API), left out for a reviewed call."""
        body = {
            "name": name,
            "programme": programme,
            "title": title,
            "opens_at": iso(opens_at),
            "closes_at": iso(closes_at),
            "budget_gpu_hours": budget_gpu_hours,
            **_some(terms or {}),
        }
        result: Json = self._call("POST", "/calls", json=body)
        return result

    # ---- proposals -------------------------------------------------------------------
    def proposals(
        self, *, call: str | None = None, project: str | None = None, state: str | None = None
    ) -> list[Json]:
        params = {"call": call, "project": project, "state": state}
        result: list[Json] = self._call("GET", "/proposals", params=params)
        return result

    def proposal(self, proposal_id: int) -> Json:
        result: Json = self._call("GET", f"/proposals/{proposal_id}")
        return result

    def submit_proposal(
        self,
        *,
        call: str,
        project: str,
        title: str,
        abstract: str,
        justification: str,
        requested_gpu_hours: float,
        gpu_model: str | None = None,
        planned_datasets: Sequence[str] = (),
        requested_days: int | None = None,
    ) -> Json:
        """Ask an open call for GPU-hours (for `requested_days` where its mode fixes how long);
        a small first request, or one to a playground call, may come back awarded."""
        body = {
            "call": call,
            "project": project,
            "title": title,
            "abstract": abstract,
            "justification": justification,
            "requested_gpu_hours": requested_gpu_hours,
            "gpu_model": gpu_model,
            "planned_datasets": list(planned_datasets),
            "requested_days": requested_days,
        }
        result: Json = self._call("POST", "/proposals", json=_some(body))
        return result

    def assign_reviewer(self, proposal_id: int, reviewer: str) -> Json:
        result: Json = self._call(
            "POST", f"/proposals/{proposal_id}/reviewers", json={"reviewer": reviewer}
        )
        return result

    def review_proposal(self, proposal_id: int, *, score: int, comment: str) -> Json:
        """The assigned reviewer's score (1–5) and comment; sending again replaces them."""
        result: Json = self._call(
            "POST", f"/proposals/{proposal_id}/reviews", json={"score": score, "comment": comment}
        )
        return result

    def award_proposal(
        self,
        proposal_id: int,
        *,
        gpu_hours: float,
        valid_from: Moment,
        valid_to: Moment,
        quota_gpus: int | None = None,
        gpu_model: str | None = None,
        note: str | None = None,
    ) -> Json:
        """Award GPU-hours; returns the allocation the proposal became."""
        body = {
            "gpu_hours": gpu_hours,
            "valid_from": iso(valid_from),
            "valid_to": iso(valid_to),
            "quota_gpus": quota_gpus,
            "gpu_model": gpu_model,
            "note": note,
        }
        result: Json = self._call("POST", f"/proposals/{proposal_id}/award", json=_some(body))
        return result

    def reject_proposal(self, proposal_id: int, *, note: str) -> Json:
        result: Json = self._call("POST", f"/proposals/{proposal_id}/reject", json={"note": note})
        return result

    def withdraw_proposal(self, proposal_id: int) -> Json:
        result: Json = self._call("POST", f"/proposals/{proposal_id}/withdraw")
        return result

    # ---- allocations -----------------------------------------------------------------
    def allocations(self, *, project: str | None = None) -> list[Json]:
        result: list[Json] = self._call("GET", "/allocations", params={"project": project})
        return result

    def create_allocation(
        self,
        *,
        project: str,
        programme: str,
        gpu_hours: float,
        valid_from: Moment,
        valid_to: Moment,
        reason: str,
        quota_gpus: int | None = None,
        gpu_model: str | None = None,
    ) -> Json:
        """Grant GPU-hours without a proposal (e.g. under a contract)."""
        body = {
            "project": project,
            "programme": programme,
            "gpu_hours": gpu_hours,
            "valid_from": iso(valid_from),
            "valid_to": iso(valid_to),
            "reason": reason,
            "quota_gpus": quota_gpus,
            "gpu_model": gpu_model,
        }
        result: Json = self._call("POST", "/allocations", json=_some(body))
        return result

    def adjust_allocation(self, name: str, *, gpu_hours: float, reason: str) -> Json:
        """Add (positive) or take (negative) GPU-hours, with the reason for the ledger."""
        result: Json = self._call(
            "POST", f"/allocations/{name}/adjust", json={"gpu_hours": gpu_hours, "reason": reason}
        )
        return result

    def allocation_ledger(self, name: str) -> list[Json]:
        result: list[Json] = self._call("GET", f"/allocations/{name}/ledger")
        return result

    # ---- usage and invoices ----------------------------------------------------------
    def usage(
        self,
        *,
        project: str | None = None,
        start: Moment | None = None,
        end: Moment | None = None,
        limit: int | None = None,
    ) -> Json:
        """Usage records that ended in [start, end) with their cost, and `totals` of all."""
        params = {
            "project": project,
            "from": None if start is None else iso(start),
            "to": None if end is None else iso(end),
            "limit": limit,
        }
        result: Json = self._call("GET", "/usage", params=params)
        return result

    def issue_invoice(self, project: str, month: str) -> Json:
        """The project's invoice for `month` (YYYY-MM, ended): issued now or as issued before."""
        result: Json = self._call("POST", f"/projects/{project}/invoices", json={"month": month})
        return result

    def invoices(self, project: str) -> list[Json]:
        result: list[Json] = self._call("GET", f"/projects/{project}/invoices")
        return result

    def invoice(self, project: str, month: str) -> Json:
        result: Json = self._call("GET", f"/projects/{project}/invoices/{month}")
        return result

    def invoice_pdf(self, project: str, month: str) -> bytes:
        return self._download(f"/projects/{project}/invoices/{month}.pdf")

    def invoice_csv(self, project: str, month: str) -> bytes:
        return self._download(f"/projects/{project}/invoices/{month}.csv")

    # ---- funder reports --------------------------------------------------------------
    def funder_report(self, *, start: Moment, end: Moment) -> Json:
        """What the facility delivered in [start, end)."""
        params = {"from": iso(start), "to": iso(end), "format": "json"}
        result: Json = self._call("GET", "/reports/funder", params=params)
        return result

    def funder_report_csv(self, *, start: Moment, end: Moment) -> bytes:
        params = {"from": iso(start), "to": iso(end), "format": "csv"}
        return self._download("/reports/funder", params=params)

    def funder_chart(self, chart: str, *, start: Moment, end: Moment, fmt: str = "png") -> bytes:
        """One of `CHARTS` as PNG or SVG."""
        params = {"from": iso(start), "to": iso(end)}
        return self._download(f"/reports/funder/charts/{chart}.{fmt}", params=params)
