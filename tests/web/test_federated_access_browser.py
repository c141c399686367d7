"""Issue 21's whole path, as README tells a new user: a facility started with the demo's
providers file (oidc-provider/facility.toml) and the test provider; a researcher of an
institution it serves signs in to the portal through the provider's real login page in
Chromium, with no admin step; signs in the CLI by the device flow; applies to a Playground
call, is awarded at once within its ceiling, and runs a job on the award."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.process import FacilityProcess
from tests.federated_portal import cli_sso_login
from tests.oidc_provider import OidcProvider, web_client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def facility(tmp_path: Path, oidc_provider: OidcProvider) -> Iterator[FacilityProcess]:
    data = tmp_path / "data"
    data.mkdir()
    process = FacilityProcess(data, f"sqlite:///{data / 'aifactory.db'}", virtual_gpus=2, cpus=4)
    client = oidc_provider.register_client(
        web_client(
            client_id=f"aifactory-portal-{process.port}",
            client_secret="the-portal-secret-of-this-test",
            redirect_uris=[f"{process.url}/login/demo/callback"],
            post_logout_redirect_uris=[f"{process.url}/login"],
        )
    )
    demo = (ROOT / "oidc-provider" / "facility.toml").read_text()
    providers = data / "providers.toml"
    providers.write_text(
        demo.replace('"http://127.0.0.1:9000"', f'"{oidc_provider.issuer}"')
        .replace('"aifactory-portal"', f'"{client["client_id"]}"')
        .replace('"aifactory-portal-secret"', f'"{client["client_secret"]}"')
    )
    process.args += ["--oidc-providers", str(providers)]
    process.start()
    try:
        yield process
    finally:
        process.stop()
        process.kill_leftover_jobs()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "aifactory", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"aifactory {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def test_a_researcher_signs_in_applies_to_a_playground_call_is_awarded_and_runs_a_job(
    page: Page, facility: FacilityProcess, oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    admin = {**os.environ, "AIFACTORY_URL": facility.url, "AIFACTORY_TOKEN": str(facility.token)}
    today = datetime.now(UTC).date()
    cli(
        admin,
        "calls", "create", "playground-2026", "--programme", "research", "--mode", "playground",
        "--title", "Playground", "--opens", today.isoformat(),
        "--closes", (today + timedelta(days=90)).isoformat(),
        "--budget-gpu-hours", "1000", "--ceiling-gpu-hours", "50",
    )  # fmt: skip

    # The portal: "Sign in with …", the provider's own login page, and back, signed in.
    page.goto(f"{facility.url}/login")
    page.get_by_role("link", name="Sign in with Demo institution (test provider)").click()
    page.wait_for_url(f"{oidc_provider.issuer}/**")
    page.get_by_label("Username").fill("anna")
    page.get_by_label("Password").fill("anna-password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{facility.url}/")
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    page.goto(f"{facility.url}/account")
    expect(page.locator("#identities")).to_contain_text("uva-anna-de-vries")
    expect(page.locator("dl.spec")).to_contain_text("a.devries")

    # The CLI, by the device flow: the same person, no token copied.
    anna = {**os.environ, "AIFACTORY_URL": facility.url, "AIFACTORY_CONFIG": str(tmp_path / "a")}
    anna.pop("AIFACTORY_TOKEN", None)
    cli_sso_login(oidc_provider, anna, "anna")

    # A Playground request within the ceiling is awarded at once; a job runs on it.
    proposal = json.loads(
        cli(
            anna,
            "proposals", "submit", "--call", "playground-2026", "--project", "a.devries-pg",
            "--title", "Trying Dutch GPT", "--abstract", "A first try.",
            "--justification", "To see whether it fits.", "--gpu-hours", "20", "--days", "30",
            "--json",
        ).stdout
    )  # fmt: skip
    assert proposal["state"] == "awarded"
    allocations = json.loads(cli(anna, "allocations", "--project", "a.devries-pg", "--json").stdout)
    awarded = [a for a in allocations if a["proposal_id"] == proposal["id"]]
    assert [(a["award_gpu_hours"], a["active"]) for a in awarded] == [(20.0, True)]
    job = cli(
        anna, "submit", "--project", "a.devries-pg", "--gpus", "1", "--time-limit", "10m",
        "--wait", "--", "echo", "hello from the playground",
    )  # fmt: skip
    assert "SUCCEEDED" in job.stdout + job.stderr
