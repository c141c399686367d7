"""The what-if pages over HTTP: the form, a run started from it, its comparison once done."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.web.conftest import PortalSession

FORM = {
    "workload": "itp-merged",
    "jobs": "80",
    "gpus": "64",
    "a_policy": "fairshare",
    "a_backfill": "",
    "a_fairness_weight": "",
    "a_half_life_h": "",
    "b_policy": "fairshare",
    "b_backfill": "",
    "b_fairness_weight": "3",
    "b_half_life_h": "",
}


def until_done(session: PortalSession, run: str) -> str:
    deadline = time.monotonic() + 120
    while True:
        status = session.get(f"{run}/status").text
        if "hx-trigger" not in status:  # no more polling: done or failed
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def test_an_operator_starts_a_run_and_sees_the_comparison_with_charts(
    pages: Callable[[str], PortalSession], tenants: Tenants
) -> None:
    olga = pages(tenants.tokens["olga"])
    form = olga.get("/whatif")
    assert form.status_code == 200
    for field in ("workload", "jobs", "gpus", "a_policy", "b_policy", "b_fairness_weight"):
        assert f'<label for="{field}"' in form.text, field

    started = olga.post("/whatif", FORM)

    assert started.status_code == 303, started.text
    run = started.headers["location"]
    assert re.fullmatch(r"/whatif/\d+", run)
    page = olga.get(run)
    assert page.status_code == 200
    assert "fairshare (fairness weight 3)" in page.text
    status = until_done(olga, run)
    assert "done" in status
    assert '<th scope="row">Mean wait</th>' in status
    assert '<th scope="row">GPU utilisation</th>' in status
    assert status.count('class="chart chart-bar"') == 5
    assert "GPUs busy over the replay" in status
    listed = olga.get("/whatif").text
    assert f'href="{run}"' in listed


def test_a_wrong_field_is_shown_next_to_it_and_what_was_typed_stays(
    pages: Callable[[str], PortalSession], tenants: Tenants
) -> None:
    olga = pages(tenants.tokens["olga"])
    olga.get("/whatif")

    refused = olga.post("/whatif", {**FORM, "b_policy": "slurm", "jobs": "lots"})

    assert refused.status_code == 422
    assert 'id="jobs-error"' in refused.text
    assert "must be a whole number" in refused.text
    assert 'aria-invalid="true" aria-describedby="jobs-error"' in refused.text
    assert 'value="lots"' in refused.text
    knob = olga.post("/whatif", {**FORM, "b_policy": "slurm"})
    assert knob.status_code == 422
    assert 'id="b_fairness_weight-error"' in knob.text
    assert '<option value="slurm" selected>' in knob.text


def test_a_plain_user_may_neither_see_nor_start_runs(
    pages: Callable[[str], PortalSession], tenants: Tenants, live_server: LiveServer
) -> None:
    alice = pages(tenants.tokens["alice"])

    assert alice.get("/whatif").status_code == 403
    alice.get("/account")
    assert alice.post("/whatif", FORM).status_code == 403
    assert 'href="/whatif"' not in alice.get("/").text
    admin = pages(live_server.admin_token)
    assert 'href="/whatif"' in admin.get("/").text
