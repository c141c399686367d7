"""Environments and images through the real API, on SQLite and PostgreSQL: who sees and makes
what, the states a build goes through (the builder itself: tests/software, tests/e2e), what a
job keeps of its software at submission, and refusals that name the field."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from aifactory.client import ApiError
from aifactory.store import builds
from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.software.imagetars import busybox_layer, oci_archive


def field_of(error: ApiError) -> str | None:
    return error.errors[0].get("field") if error.errors else None


def built(live_server: LiveServer, key: str) -> None:
    """What the builder does once pip is done: the build is ready with its packages."""
    with live_server.db.session() as session:
        claimed = builds.claim_build(session, builder="test:1", now=time.time())
        assert claimed is not None
        assert claimed.key == key
    with live_server.db.session() as session:
        packages = [{"name": "aifprobe", "version": "1.0", "license": "MIT"}]
        builds.finish_build(
            session, key, now=time.time(), packages=packages, python_version="3.11.7"
        )


def test_an_environment_is_queued_then_ready_and_a_job_keeps_its_build(
    tenants: Tenants, live_server: LiveServer
) -> None:
    alice = tenants.as_("alice")
    made = alice.create_environment("probe", "aifprobe==1.0  # pinned\n", project="proj-a")
    assert (made["state"], made["project"], made["requirements"]) == (
        "queued",
        "proj-a",
        ["aifprobe==1.0"],
    )
    with pytest.raises(ApiError) as early:
        alice.submit(["python", "-V"], project="proj-a", environment="probe")
    assert early.value.status == 422
    assert field_of(early.value) == "environment"
    assert "still being built" in str(early.value)

    built(live_server, made["key"])
    found = alice.environment("probe", project="proj-a")
    assert found["state"] == "ready"
    assert found["packages"][0]["name"] == "aifprobe"
    job = alice.submit(["python", "-V"], project="proj-a", environment="probe")
    assert (job["environment"], job["environment_key"]) == ("probe", made["key"])
    assert [j["id"] for j in alice.environment_jobs("probe", project="proj-a")] == [job["id"]]
    assert alice.environment("probe", project="proj-a")["jobs"] == 1

    alice.delete_environment("probe", project="proj-a")
    assert alice.environments(project="proj-a") == []
    assert alice.job(job["id"])["environment_key"] == made["key"]  # the job keeps its build


def test_other_projects_and_viewers_are_refused(tenants: Tenants) -> None:
    tenants.as_("alice").create_environment("probe", "aifprobe==1.0\n", project="proj-a")
    bob, vera = tenants.as_("bob"), tenants.as_("vera")
    with pytest.raises(ApiError) as hidden:
        bob.environment("probe", project="proj-a")
    assert hidden.value.status == 404
    assert [e["name"] for e in bob.environments()] == []
    assert [e["name"] for e in vera.environments()] == ["probe"]  # a viewer sees it…
    with pytest.raises(ApiError) as viewer:  # …and may not make one
        vera.create_environment("mine", "aifprobe\n", project="proj-a")
    assert viewer.value.status == 403
    with pytest.raises(ApiError) as facility:
        tenants.as_("alice").create_environment("shared", "aifprobe\n")
    assert facility.value.status == 403
    with pytest.raises(ApiError) as theirs:  # bob cannot run alice's project's environment
        bob.submit(["true"], project="proj-b", environment="probe")
    assert theirs.value.status == 422
    assert field_of(theirs.value) == "environment"


def test_the_facilitys_environments_are_everyones(
    tenants: Tenants, live_server: LiveServer
) -> None:
    made = tenants.admin.create_environment("base", "aifprobe==1.0\n", python="3.11")
    assert made["project"] is None
    assert made["python"] == "3.11"
    built(live_server, made["key"])
    bob = tenants.as_("bob")
    assert [e["name"] for e in bob.environments()] == ["base"]
    job = bob.submit(["python", "-V"], project="proj-b", environment="base")
    assert job["environment_key"] == made["key"]
    again = tenants.as_("alice").create_environment("mine", "AIFPROBE == 1.0\n", project="proj-a")
    assert again["key"] == made["key"]
    assert again["state"] == "ready"


@pytest.mark.parametrize(
    ("requirements", "python", "field", "said"),
    [
        ("-r other.txt\n", None, "requirements", "line 1"),
        ("numpy\n--extra-index-url https://x.example/simple\n", None, "requirements", "line 2"),
        ("torch @ https://x.example/torch.whl\n", None, "requirements", "line 1"),
        ("./local/package\n", None, "requirements", "line 1"),
        ("# nothing\n\n", None, "requirements", "no requirement"),
        ("numpy\n", "2.7", "python", "3"),
    ],
)
def test_requirements_the_facility_will_not_build_are_refused_by_line(
    tenants: Tenants, requirements: str, python: str | None, field: str, said: str
) -> None:
    with pytest.raises(ApiError) as refused:
        tenants.as_("alice").create_environment(
            "bad", requirements, project="proj-a", python=python
        )
    assert refused.value.status == 422
    assert field_of(refused.value) == field
    assert said in str(refused.value) or said in str(refused.value.errors)


def test_a_name_is_taken_once_per_project(tenants: Tenants) -> None:
    alice = tenants.as_("alice")
    alice.create_environment("probe", "aifprobe==1.0\n", project="proj-a")
    with pytest.raises(ApiError) as taken:
        alice.create_environment("probe", "aifprobe==2.0\n", project="proj-a")
    assert taken.value.status == 409
    assert field_of(taken.value) == "name"
    tenants.as_("bob").create_environment("probe", "aifprobe==2.0\n", project="proj-b")


@pytest.fixture
def image_tar(tmp_path: Path) -> Path:
    tar = tmp_path / "busybox.tar"
    oci_archive(tar, [busybox_layer()], ref="busybox:test")
    return tar


def test_an_admin_imports_an_image_and_a_job_keeps_its_digest(
    tenants: Tenants, image_tar: Path
) -> None:
    (image,) = tenants.admin.import_image(image_tar)
    assert image["name"] == "busybox:test"
    assert image["digest"].startswith("sha256:")
    assert image["env"] == ["PATH=/usr/local/bin:/usr/bin:/bin", "IMAGE_VAR=from-image"]
    bob = tenants.as_("bob")
    assert [i["name"] for i in bob.images()] == ["busybox:test"]
    job = bob.submit(["id"], project="proj-b", image="busybox:test")
    assert (job["image"], job["image_digest"]) == ("busybox:test", image["digest"])
    by_digest = bob.submit(["id"], project="proj-b", image=image["digest"])
    assert by_digest["image_digest"] == image["digest"]
    assert bob.image("busybox:test")["jobs"] == 2

    (same,) = tenants.admin.import_image(image_tar, name="tools:1")  # kept once, named twice
    assert same["digest"] == image["digest"]
    tenants.admin.remove_image("busybox:test")
    assert [i["name"] for i in bob.images()] == ["tools:1"]
    assert bob.job(job["id"])["image_digest"] == image["digest"]


def test_image_refusals_name_the_field(
    tenants: Tenants, image_tar: Path, tmp_path: Path, live_server: LiveServer
) -> None:
    with pytest.raises(ApiError) as member:
        tenants.as_("alice").import_image(image_tar)
    assert member.value.status == 403
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ApiError) as broken:
        tenants.admin.import_image(junk, name="junk:1")
    assert broken.value.status == 422
    assert field_of(broken.value) == "file"
    with pytest.raises(ApiError) as unknown:
        tenants.as_("bob").submit(["id"], project="proj-b", image="nothing:1")
    assert unknown.value.status == 422
    assert field_of(unknown.value) == "image"
    with pytest.raises(ApiError) as both:
        tenants.as_("bob").submit(["id"], project="proj-b", image="a:1", environment="b")
    assert both.value.status == 422
    # the image upload's own limit does not lift the API's for other requests
    big = httpx.post(
        f"{live_server.url}/api/v1/environments",
        content=b"x" * (128 * 1024),
        headers={**tenants.headers("alice"), "Content-Type": "application/json"},
    )
    assert big.status_code == 413
    leftovers = list((tmp_path / "software" / "images").glob(".incoming-*"))
    assert leftovers == []  # an upload refused leaves nothing behind
