"""Software through a real facility (`aifactory up`): environments built from the facility's
own registry (a real PEP 503 index on 127.0.0.1, the only one it is given), two projects with
conflicting versions of one package running side by side, refusals that name the field, and
what a job records of the software it ran in (docs/software.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aifactory.client import ApiError, Client
from tests.e2e.process import FacilityProcess
from tests.software.imagetars import busybox_layer, oci_archive
from tests.software.registry import make_wheel, publish, serve
from tests.web.conftest import PortalSession

pytestmark = pytest.mark.slow

PROBE = 'import aifprobe, sys; print("aifprobe", aifprobe.VERSION, "in", sys.prefix)'


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("registry")
    for version in ("1.0", "2.0"):
        files = {"aifprobe/__init__.py": f'VERSION = "{version}"\n'}
        publish(root, make_wheel(root / "files", "aifprobe", version, files))
    with serve(root) as url:
        yield url


@pytest.fixture(scope="module")
def facility(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FacilityProcess]:
    data = tmp_path_factory.mktemp("facility")
    process = FacilityProcess(data, f"sqlite:///{data / 'aifactory.db'}", virtual_gpus=0, cpus=4)
    process.args += ["--package-index", registry]
    process.start()
    try:
        yield process
    finally:
        process.kill_leftover_jobs()
        process.stop()


@pytest.fixture(scope="module")
def people(facility: FacilityProcess) -> Iterator[dict[str, Client]]:
    """ann in project alpha, bob in project beta."""
    with facility.client() as admin:
        admin.create_organisation("labs", "university")
        found = {}
        for user, project in (("ann", "alpha"), ("bob", "beta")):
            admin.create_project(project, "labs")
            token = admin.create_user(user)["token"]
            admin.add_member(project, user)
            found[user] = Client(facility.url, token)
    yield found
    for client in found.values():
        client.close()


def field_of(error: ApiError) -> str | None:
    return error.errors[0].get("field") if error.errors else None


def ready(api: Client, name: str, project: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = api.environment(name, project=project)
        if found["state"] in ("ready", "failed"):
            return found
        time.sleep(0.2)
    raise AssertionError(f"environment {name} not built in {timeout_s} s")


def ended(api: Client, job_id: int, timeout_s: float = 60) -> dict[str, Any]:
    job = api.wait(job_id, timeout_s=timeout_s)
    job["log"] = api.logs(job_id)["text"]
    return job


def test_two_projects_run_conflicting_versions_side_by_side(
    facility: FacilityProcess, people: dict[str, Client]
) -> None:
    ann, bob = people["ann"], people["bob"]
    a = ann.create_environment("probe", "aifprobe==1.0\n", project="alpha")
    b = bob.create_environment("probe", "# the new one\naifprobe == 2.0\n", project="beta")
    assert a["state"] == "queued"
    assert a["key"] != b["key"]
    a, b = ready(ann, "probe", "alpha"), ready(bob, "probe", "beta")
    assert (a["state"], b["state"]) == ("ready", "ready"), (a["error"], b["error"])
    assert [(p["name"], p["version"]) for p in a["packages"]] == [("aifprobe", "1.0")]
    assert [(p["name"], p["version"]) for p in b["packages"]] == [("aifprobe", "2.0")]
    assert a["packages"][0]["license"] == "MIT"

    spec = {"time_limit_s": 60, "cpus": 1, "memory_mb": 512}
    job_a = ann.submit(["python", "-c", PROBE], project="alpha", environment="probe", **spec)
    job_b = bob.submit(["python", "-c", PROBE], project="beta", environment="probe", **spec)
    done_a, done_b = ended(ann, job_a["id"]), ended(bob, job_b["id"])
    assert done_a["state"] == "SUCCEEDED", done_a["log"]
    assert done_b["state"] == "SUCCEEDED", done_b["log"]
    assert "aifprobe 1.0 in" in done_a["log"]
    assert a["key"] in done_a["log"]
    assert "aifprobe 2.0 in" in done_b["log"]
    assert b["key"] in done_b["log"]
    assert done_a["environment"] == "probe"
    assert done_a["environment_key"] == a["key"]
    assert [j["id"] for j in ann.environment_jobs("probe", project="alpha")] == [job_a["id"]]

    launch = json.loads(
        (facility.data_dir / "jobs" / str(job_a["id"]) / "attempt-1" / "launch.json").read_text()
    )
    assert launch["environment"]["key"] == a["key"]  # the attempt records what it ran in


def test_the_same_requirements_are_built_once(
    facility: FacilityProcess, people: dict[str, Client]
) -> None:
    ann = people["ann"]
    first = ready(ann, "probe", "alpha")
    again = ann.create_environment("probe-too", "AIFPROBE==1.0\n\n", project="alpha")
    assert again["key"] == first["key"]
    assert again["state"] == "ready"


def test_the_environment_is_read_only_and_the_facilitys_python_is_not_in_it(
    facility: FacilityProcess, people: dict[str, Client]
) -> None:
    ann = people["ann"]
    key = ready(ann, "probe", "alpha")["key"]
    script = (
        'import sys, pathlib; p = pathlib.Path(sys.prefix) / "lib" / "x"; '
        "print('prefix', sys.prefix)\n"
        "try:\n    p.write_text('x')\nexcept OSError as e:\n    print('refused', e.errno)\n"
        "try:\n    import fastapi\nexcept ImportError:\n    print('no fastapi')\n"
    )
    job = ann.submit(["python", "-c", script], project="alpha", environment="probe")
    done = ended(ann, job["id"])
    assert done["state"] == "SUCCEEDED", done["log"]
    assert f"envs/{key}" in done["log"]
    assert "refused 30" in done["log"] or "refused 13" in done["log"]  # EROFS / EACCES
    assert "no fastapi" in done["log"]  # the facility's own packages are not the job's


def test_a_failed_build_says_what_pip_said(
    facility: FacilityProcess, people: dict[str, Client]
) -> None:
    bob = people["bob"]
    bob.create_environment("broken", "aifprobe==9.9\n", project="beta")
    found = ready(bob, "broken", "beta")
    assert found["state"] == "failed"
    assert "No matching distribution found for aifprobe==9.9" in found["error"]
    log = bob.environment_log("broken", project="beta")["lines"]
    assert any("No matching distribution" in line for line in log)
    with pytest.raises(ApiError) as refused:
        bob.submit(["python", "-V"], project="beta", environment="broken")
    assert refused.value.status == 422
    assert field_of(refused.value) == "environment"
    assert "failed to build" in str(refused.value)


def test_refusals_name_the_field(facility: FacilityProcess, people: dict[str, Client]) -> None:
    ann = people["ann"]
    with pytest.raises(ApiError) as bad:
        ann.create_environment("x", "--index-url https://example.com/simple\n", project="alpha")
    assert bad.value.status == 422
    assert field_of(bad.value) == "requirements"
    assert "line 1" in str(bad.value)
    with pytest.raises(ApiError) as url:
        ann.create_environment("y", "torch @ https://example.com/t.whl\n", project="alpha")
    assert url.value.status == 422
    assert field_of(url.value) == "requirements"
    with pytest.raises(ApiError) as unknown:
        ann.submit(["true"], project="alpha", environment="nope")
    assert unknown.value.status == 422
    assert field_of(unknown.value) == "environment"
    with pytest.raises(ApiError) as other:  # beta's environment is not alpha's to name
        ann.environment("broken", project="beta")
    assert other.value.status == 404
    with pytest.raises(ApiError) as facility_wide:  # the facility's: admins only
        ann.create_environment("mine", "aifprobe==1.0\n")
    assert facility_wide.value.status == 403
    with pytest.raises(ApiError) as both:
        ann.submit(["true"], project="alpha", environment="probe", image="busybox:1")
    assert both.value.status == 422


def test_the_portal_shows_the_packages_and_the_jobs(
    facility: FacilityProcess, people: dict[str, Client]
) -> None:
    ann = people["ann"]
    ready(ann, "probe", "alpha")
    assert facility.token is not None
    web = PortalSession(facility.url).sign_in(facility.token)
    try:
        listing = web.get("/software")
        assert listing.status_code == 200
        assert "probe" in listing.text
        detail = web.get("/software/environments/probe", project="alpha")
        assert detail.status_code == 200
        assert "aifprobe" in detail.text
        assert "1.0" in detail.text
        assert "MIT" in detail.text
        assert "Jobs that ran in it" in detail.text
    finally:
        web.close()


def test_a_job_runs_in_an_imported_image_as_its_projects_identity(
    facility: FacilityProcess, people: dict[str, Client], tmp_path: Path
) -> None:
    tar = tmp_path / "busybox.tar"
    oci_archive(tar, [busybox_layer()], ref=None)
    with facility.client() as admin:
        (image,) = admin.import_image(tar, name="busybox:1")
    ann = people["ann"]
    script = "id -u; echo image-var=$IMAGE_VAR; test -e /usr/bin/python3 || echo no-host-python"
    job = ann.submit(["sh", "-c", script], project="alpha", image="busybox:1")
    done = ended(ann, job["id"])
    assert done["state"] == "SUCCEEDED", done["log"]
    uid = int(done["log"].split()[0])
    assert uid >= 3_000_000  # the project's identity, not root
    assert "image-var=from-image" in done["log"]
    assert "no-host-python" in done["log"]
    assert done["image_digest"] == image["digest"]
    launch = json.loads(
        (facility.data_dir / "jobs" / str(job["id"]) / "attempt-1" / "launch.json").read_text()
    )
    assert launch["image"]["digest"] == image["digest"]


def test_the_cli_builds_an_environment_and_submits_into_it(
    facility: FacilityProcess, people: dict[str, Client], tmp_path: Path
) -> None:
    assert facility.token is not None
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("aifprobe>=2\n")
    cli = [sys.executable, "-m", "aifactory", "--url", facility.url, "--token", facility.token]
    env = {**facility.env, "COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, *args], capture_output=True, text=True, env=env, timeout=120, check=False
        )

    made = run(
        "env", "create", "cli-probe", "--project", "alpha", "-r", str(requirements), "--wait"
    )
    assert made.returncode == 0, made.stderr
    assert "environment cli-probe (alpha): ready" in made.stdout
    assert "1 packages" in made.stdout
    shown = run("env", "show", "cli-probe", "--project", "alpha")
    assert shown.returncode == 0
    assert "aifprobe" in shown.stdout
    assert "2.0" in shown.stdout
    listed = run("env", "list", "--project", "alpha")
    assert "cli-probe" in listed.stdout
    assert "ready" in listed.stdout
    ran = run(
        "submit", "--project", "alpha", "--environment", "cli-probe", "--wait", "--",
        "python", "-c", "import aifprobe; print('v', aifprobe.VERSION)",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "v 2.0" in ran.stdout
    images = run("images")
    assert images.returncode == 0, images.stderr
