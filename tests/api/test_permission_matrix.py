"""THE permission test: every cell of the matrix (domain.permissions) through the real API.

One facility per module (SQLite; the matrix does not depend on the database): organisation acme
with project `p` (owen owner, mia member, vic viewer), one user per facility role with no project
(ada admin, olga operator, rita reviewer, fiona finance, audrey auditor), open call `c1`,
allocation `p-research`, a job of mia's, a running session of mia's, dataset `p-data` and an
erasure of another of p's datasets. Each action has an exercise that does it through its real
endpoint as one user, on a fresh object where the action changes one (made by the bootstrap admin,
`root`). A role in the action's row gets a 2xx; any other gets the refusal docs/permissions.md
promises: 404 where the role sees neither `p` nor the object and a project role could have allowed
it, else 403 naming the roles that may. A new Action fails `test_every_action_has_an_exercise`
until it has one.
"""

from __future__ import annotations

import itertools
import json
import shutil
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from aifactory.domain.permissions import (
    MATRIX,
    PROJECT_ROLES,
    Action,
    Role,
    allowed,
    who_may,
)
from aifactory.store.db import Database
from aifactory.store.models import Job
from tests.api.helpers import bearer
from tests.conftest import serving
from tests.software.imagetars import busybox_layer, oci_archive

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
USERS = {
    Role.ADMIN: "ada",
    Role.OPERATOR: "olga",
    Role.REVIEWER: "rita",
    Role.FINANCE: "fiona",
    Role.AUDITOR: "audrey",
    Role.OWNER: "owen",
    Role.MEMBER: "mia",
    Role.VIEWER: "vic",
}
REVIEWERS = {"ada", "rita"}  # those the admin may assign (facility roles in proposal.review)


def iso(moment: datetime) -> str:
    return moment.isoformat()


@dataclass
class Facility:
    api: httpx.Client
    tokens: dict[str, str]
    data_root: Path
    job: int = 0  # mia's job in p
    session: int = 0  # mia's session in p, running
    erasure: int = 0  # of version 1 of p's dataset p-erased
    numbers: Iterator[int] = field(default_factory=itertools.count)

    def unique(self, stem: str) -> str:
        return f"{stem}-{next(self.numbers)}"

    def do(
        self,
        user: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        **params: Any,
    ) -> httpx.Response:
        headers = bearer(self.tokens[user])
        return self.api.request(method, path, json=body, params=params, headers=headers)

    def ok(self, user: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.do(user, method, path, body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def proposal(self) -> int:
        """A fresh proposal of p's in c1, submitted (above the starter size: nobody decided)."""
        body = {
            "call": "c1",
            "project": "p",
            "title": "Protein folding",
            "abstract": "We fold proteins.",
            "justification": "Eight GPUs for a month.",
            "requested_gpu_hours": 300.0,
        }
        made: int = self.ok("owen", "POST", "/proposals", body)["id"]
        return made

    def assigned(self, user: str) -> int:
        """A fresh proposal with `user` assigned to review it, if they are one who may review."""
        made = self.proposal()
        if user in REVIEWERS:
            self.ok("root", "POST", f"/proposals/{made}/reviewers", {"reviewer": user})
        return made

    def submitted_job(self) -> int:
        made: int = self.ok("mia", "POST", "/jobs", {"command": ["true"], "project": "p"})["id"]
        return made

    def dataset_body(self, name: str) -> dict[str, Any]:
        """A public dataset of p's, named `name`, over a fresh directory in p's area of the
        data root (`<root>/p/`)."""
        (self.data_root / "p" / name).mkdir(parents=True)
        (self.data_root / "p" / name / "part-0.txt").write_text(f"{name}\n")
        return {
            "name": name,
            "project": "p",
            "controller": "UvA",
            "processor": "AI Factory NL",
            "path": name,
            "classification": "public",
            "residency": "ANY",
            "retention_until": iso(NOW + 365 * DAY),
            "licence": "CC0-1.0",
        }

    def dataset(self) -> str:
        name = self.unique("data")
        self.ok("root", "POST", "/datasets", self.dataset_body(name))
        return name

    def project(self) -> str:
        """A fresh project of acme's where owen, mia and vic have their roles, as in p."""
        name = self.unique("proj")
        self.ok(
            "root", "POST", "/projects", {"name": name, "organisation": "acme", "owner": "owen"}
        )
        for user, role in (("mia", "member"), ("vic", "viewer")):
            self.ok("root", "PUT", f"/projects/{name}/members", {"user": user, "role": role})
        return name


@pytest.fixture(scope="module")
def facility(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Facility]:
    tmp = tmp_path_factory.mktemp("matrix")
    shutil.copy(sqlite_template, tmp / "aifactory.db")
    db = Database(f"sqlite:///{tmp / 'aifactory.db'}")
    tls = ssl.create_default_context()
    with (
        serving(db, tmp) as server,
        httpx.Client(base_url=f"{server.url}/api/v1", timeout=30, verify=tls) as api,
    ):
        assert server.state.data_root is not None
        world = Facility(api, {"root": server.admin_token}, server.state.data_root)
        _build(world)
        with db.session() as session:  # mia's job has trained something to serve
            session.execute(update(Job).where(Job.id == world.job).values(state="SUCCEEDED"))
            session.execute(  # and her session runs (no notebook server is needed to open it)
                update(Job)
                .where(Job.id == world.session)
                .values(state="RUNNING", admitted_at=NOW.timestamp(), started_at=NOW.timestamp())
            )
        yield world
    db.dispose()


def _build(world: Facility) -> None:
    root = "root"
    world.ok(root, "POST", "/organisations", {"name": "acme", "kind": "university"})
    facility_roles = {u: r.value for r, u in USERS.items() if not r.in_project}
    for name in USERS.values():
        role = facility_roles.get(name, "user")
        made = world.ok(root, "POST", "/users", {"name": name, "facility_role": role})
        world.tokens[name] = made["token"]
    world.ok(root, "POST", "/projects", {"name": "p", "organisation": "acme", "owner": "owen"})
    world.ok(root, "POST", "/projects", {"name": "q", "organisation": "acme"})  # granted p-data
    for user, role in (("mia", "member"), ("vic", "viewer")):
        world.ok(root, "PUT", "/projects/p/members", {"user": user, "role": role})
    call = {
        "name": "c1",
        "programme": "research",
        "title": "Open call",
        "opens_at": iso(NOW - DAY),
        "closes_at": iso(NOW + 30 * DAY),
        "budget_gpu_hours": 1_000_000,
    }
    world.ok(root, "POST", "/calls", call)
    world.ok(root, "POST", "/allocations", _allocation(NOW, NOW + 180 * DAY))
    world.job = world.submitted_job()
    world.session = world.ok("mia", "POST", "/sessions", {"project": "p"})["id"]
    world.ok(root, "POST", "/datasets", world.dataset_body("p-data"))
    world.ok(root, "POST", "/datasets", world.dataset_body("p-erased"))
    env = {"name": "p-env", "project": "p", "requirements": "aifprobe==1.0\n"}
    world.ok("owen", "POST", "/environments", env)
    erase = {"reason": "the subject asked"}
    world.erasure = world.ok(root, "POST", "/datasets/p-erased/versions/1/erasure", erase)["id"]


def _allocation(start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "project": "p",
        "programme": "research",
        "gpu_hours": 1000,
        "valid_from": iso(start),
        "valid_to": iso(end),
        "reason": "contract",
    }


Exercise = Callable[[Facility, str], httpx.Response]


def _member_add(f: Facility, user: str) -> httpx.Response:
    newcomer = f.unique("newcomer")
    f.ok("root", "POST", "/users", {"name": newcomer, "token": False})
    return f.do(user, "PUT", "/projects/p/members", {"user": newcomer, "role": "viewer"})


def _programme(f: Facility, user: str) -> httpx.Response:
    """Set programme `commercial`'s terms to what they are (every share is taken already)."""
    (terms,) = [p for p in f.ok("root", "GET", "/programmes") if p["name"] == "commercial"]
    body = {k: v for k, v in terms.items() if k not in ("name", "created_at")}
    return f.do(user, "PUT", "/programmes/commercial", body)


def _call(f: Facility, user: str) -> httpx.Response:
    body = {
        "name": f.unique("call"),
        "programme": "research",
        "title": "Another call",
        "opens_at": iso(NOW),
        "closes_at": iso(NOW + DAY),
        "budget_gpu_hours": 10,
    }
    return f.do(user, "POST", "/calls", body)


def _proposal_submit(f: Facility, user: str) -> httpx.Response:
    body = {
        "call": "c1",
        "project": "p",
        "title": "Language models",
        "abstract": "Dutch text.",
        "justification": "Many GPUs.",
        "requested_gpu_hours": 300.0,
    }
    return f.do(user, "POST", "/proposals", body)


def _allocation_create(f: Facility, user: str) -> httpx.Response:
    later = NOW + 365 * DAY  # after p-research ends: one allocation per programme at a time
    return f.do(user, "POST", "/allocations", _allocation(later, later + DAY))


def _review(f: Facility, user: str) -> httpx.Response:
    body = {"score": 4, "comment": "Sound plan."}
    return f.do(user, "POST", f"/proposals/{f.assigned(user)}/reviews", body)


def _node_drain(f: Facility, user: str) -> httpx.Response:
    """Drain the facility's node; root resumes it at once, for the jobs of other cells."""
    (node,) = f.ok("root", "GET", "/nodes")
    response = f.do(user, "POST", f"/nodes/{node['id']}/drain", {"reason": "matrix test"})
    f.ok("root", "POST", f"/nodes/{node['id']}/resume")
    return response


def _image_import(f: Facility, user: str) -> httpx.Response:
    """The busybox image (tests.software.imagetars), under a fresh name."""
    tar = f.data_root.parent / "busybox.tar"
    if not tar.exists():
        oci_archive(tar, [busybox_layer()], ref=None)
    headers = {**bearer(f.tokens[user]), "Content-Type": "application/x-tar"}
    name = f.unique("busybox")
    return f.api.post("/images", content=tar.read_bytes(), params={"name": name}, headers=headers)


A_MONTH: dict[str, Any] = {"from": "2025-01-01", "to": "2025-02-01"}


def _federation_import(f: Facility, user: str) -> httpx.Response:
    """A dry run of one award for a new project: authorised and checked in full, kept never."""
    award = {
        "award_id": f.unique("award"),
        "project_id": "upstream-1",
        "project_name": f.unique("fed"),
        "organisation_name": "acme",
        "organisation_kind": "university",
        "pi_issuer": "https://idp.example.org/",
        "pi_subject": "ada",
        "gpu_hours": 10,
        "start": iso(NOW)[:10],
        "end": iso(NOW + DAY)[:10],
        "programme": "research",
    }
    body = {"source": "a.json", "format": "json", "content": json.dumps([award]), "dry_run": True}
    return f.do(user, "POST", "/federation/imports", body)


def _grant(f: Facility, user: str) -> httpx.Response:
    body = {"project": "q", "purpose": f.unique("research"), "until": iso(NOW + 30 * DAY)}
    return f.do(user, "POST", "/datasets/p-data/grants", body)


EXERCISES: dict[Action, Exercise] = {
    Action.FACILITY_PAUSE: lambda f, u: f.do(u, "PUT", "/facility/admission", {"paused": False}),
    Action.SITE_MANAGE: lambda f, u: f.do(
        u, "PUT", f"/sites/{f.unique('site')}", {"country": "NL"}
    ),
    Action.NODE_DRAIN: _node_drain,
    Action.SCHEDULER_WHATIF: lambda f, u: f.do(
        u,
        "POST",
        "/whatif",
        {
            "workload": "itp-cluster10",
            "jobs": 10,
            "gpus": 8,
            "a": {"policy": "fifo"},
            "b": {"policy": "easy"},
        },
    ),
    Action.USER_CREATE: lambda f, u: f.do(u, "POST", "/users", {"name": f.unique("u")}),
    Action.USER_LIST: lambda f, u: f.do(u, "GET", "/users"),
    Action.TOKEN_MANAGE: lambda f, u: f.do(u, "GET", "/tokens", owner="admin"),
    Action.ORGANISATION_CREATE: lambda f, u: f.do(
        u, "POST", "/organisations", {"name": f.unique("org"), "kind": "startup"}
    ),
    Action.PROJECT_CREATE: lambda f, u: f.do(
        u, "POST", "/projects", {"name": f.unique("proj"), "organisation": "acme", "owner": "owen"}
    ),
    Action.PROJECT_READ: lambda f, u: f.do(u, "GET", "/projects/p/members"),
    Action.MEMBER_MANAGE: _member_add,
    Action.JOB_SUBMIT: lambda f, u: f.do(u, "POST", "/jobs", {"command": ["true"], "project": "p"}),
    Action.JOB_READ: lambda f, u: f.do(u, "GET", f"/jobs/{f.job}"),
    Action.JOB_CANCEL: lambda f, u: f.do(u, "POST", f"/jobs/{f.submitted_job()}/cancel"),
    Action.JOB_PRIORITISE: lambda f, u: f.do(
        u, "PUT", f"/jobs/{f.submitted_job()}/priority", {"priority": 5}
    ),
    Action.PROGRAMME_EDIT: _programme,
    Action.CALL_CREATE: _call,
    Action.PROPOSAL_SUBMIT: _proposal_submit,
    Action.PROPOSAL_READ: lambda f, u: f.do(u, "GET", f"/proposals/{f.assigned(u)}"),
    Action.PROPOSAL_ASSIGN: lambda f, u: f.do(
        u, "POST", f"/proposals/{f.proposal()}/reviewers", {"reviewer": "rita"}
    ),
    Action.PROPOSAL_REVIEW: _review,
    Action.PROPOSAL_DECIDE: lambda f, u: f.do(
        u, "POST", f"/proposals/{f.proposal()}/reject", {"note": "out of scope"}
    ),
    Action.PROPOSAL_WITHDRAW: lambda f, u: f.do(u, "POST", f"/proposals/{f.proposal()}/withdraw"),
    Action.ALLOCATION_READ: lambda f, u: f.do(u, "GET", "/allocations/p-research/ledger"),
    Action.ALLOCATION_CREATE: _allocation_create,
    Action.ALLOCATION_ADJUST: lambda f, u: f.do(
        u, "POST", "/allocations/p-research/adjust", {"gpu_hours": 1, "reason": "top-up"}
    ),
    Action.USAGE_READ: lambda f, u: f.do(u, "GET", "/usage", project="p"),
    Action.INVOICE_READ: lambda f, u: f.do(u, "GET", "/projects/p/invoices"),
    Action.INVOICE_ISSUE: lambda f, u: f.do(
        u, "POST", "/projects/p/invoices", {"month": "2025-01"}
    ),
    Action.REPORT_EXPORT: lambda f, u: f.do(
        u, "GET", "/reports/funder", **{"from": "2025-01-01", "to": "2025-02-01"}
    ),
    Action.FEDERATION_IMPORT: _federation_import,
    Action.FEDERATION_EXPORT: lambda f, u: f.do(u, "GET", "/federation/usage", **A_MONTH),
    Action.AUDIT_READ: lambda f, u: f.do(u, "GET", "/audit"),
    Action.AUDIT_VERIFY: lambda f, u: f.do(u, "GET", "/audit/verify"),
    Action.DATASET_READ: lambda f, u: f.do(u, "GET", "/datasets/p-data"),
    Action.DATASET_REGISTER: lambda f, u: f.do(
        u, "POST", "/datasets", f.dataset_body(f.unique("data"))
    ),
    Action.DATASET_GRANT: _grant,
    Action.ERASURE_REQUEST: lambda f, u: f.do(
        u, "POST", f"/datasets/{f.dataset()}/versions/1/erasure", {"reason": "the subject asked"}
    ),
    Action.ERASURE_READ: lambda f, u: f.do(u, "GET", f"/erasures/{f.erasure}"),
    Action.PROCESSING_RECORDS_EXPORT: lambda f, u: f.do(u, "GET", "/processing-records"),
    Action.PROJECT_EXPORT: lambda f, u: f.do(u, "GET", "/projects/p/export"),
    Action.PROJECT_CLOSE: lambda f, u: f.do(
        u, "POST", f"/projects/{f.project()}/close", {"reason": "the project ended"}
    ),
    Action.SOFTWARE_READ: lambda f, u: f.do(u, "GET", "/environments/p-env", project="p"),
    Action.ENVIRONMENT_CREATE: lambda f, u: f.do(
        u,
        "POST",
        "/environments",
        {"name": f.unique("env"), "project": "p", "requirements": "aifprobe==1.0\n"},
    ),
    Action.IMAGE_IMPORT: _image_import,
    Action.ENDPOINT_READ: lambda f, u: f.do(u, "GET", "/endpoints", project="p"),
    Action.ENDPOINT_MANAGE: lambda f, u: f.do(
        u, "POST", "/endpoints", {"name": f.unique("model"), "project": "p", "source_job": f.job}
    ),
    # mia's own session: the member who started it may, as may any owner of p (the service
    # turns away other members as if it did not exist, a rule the matrix does not hold)
    Action.SESSION_USE: lambda f, u: f.do(u, "POST", f"/sessions/{f.session}/open"),
    Action.INFERENCE_KEY_MANAGE: lambda f, u: f.do(
        u, "POST", "/inference-keys", {"name": f.unique("key"), "project": "p"}
    ),
}
# Exercises that name no object of p (facility-wide actions, and listings of every project's
# part): whoever may not is told so (403), never that something does not exist.
WITHOUT_PROJECT = {
    Action.FACILITY_PAUSE,
    Action.SITE_MANAGE,
    Action.NODE_DRAIN,
    Action.USER_CREATE,
    Action.USER_LIST,
    Action.TOKEN_MANAGE,
    Action.ORGANISATION_CREATE,
    Action.PROJECT_CREATE,
    Action.PROGRAMME_EDIT,
    Action.CALL_CREATE,
    Action.REPORT_EXPORT,
    Action.FEDERATION_IMPORT,
    Action.FEDERATION_EXPORT,
    Action.AUDIT_READ,
    Action.AUDIT_VERIFY,
    Action.PROCESSING_RECORDS_EXPORT,
    Action.IMAGE_IMPORT,
}
# Objects a role may see without seeing their project: a dataset of p's is shown to whoever may
# read datasets (an auditor), who is then told why not (403) rather than that it does not exist.
SEEN_WITH = {Action.DATASET_GRANT: Action.DATASET_READ, Action.ERASURE_REQUEST: Action.DATASET_READ}
# Cells where the code answers otherwise than docs/permissions.md promises, and the fix. Strict:
# once fixed, the cell passes and must come out of here.
DEVIATIONS: dict[tuple[Action, Role], str] = {}  # cells where the code answers otherwise


def refusal(action: Action, role: Role) -> int:
    """The status docs/permissions.md promises `role` when `action` is not theirs."""
    if action in WITHOUT_PROJECT or not MATRIX[action].roles & PROJECT_ROLES:
        return 403
    roles = frozenset({role})
    sees = allowed(Action.PROJECT_READ, roles) or (
        action in SEEN_WITH and allowed(SEEN_WITH[action], roles)
    )
    return 403 if sees else 404


def cells() -> list[Any]:
    return [
        pytest.param(
            action,
            role,
            id=f"{action}-{role}",
            marks=[pytest.mark.xfail(reason=DEVIATIONS[action, role], strict=True)]
            if (action, role) in DEVIATIONS
            else [],
        )
        for action in Action
        if action in EXERCISES
        for role in Role
    ]


@pytest.mark.parametrize(("action", "role"), cells())
def test_cell(facility: Facility, action: Action, role: Role) -> None:
    response = EXERCISES[action](facility, USERS[role])

    status = response.status_code
    if role in MATRIX[action].roles:
        assert 200 <= status < 300, f"{role} may {action}, got {status}: {response.text}"
        return
    expected = refusal(action, role)
    assert status == expected, f"{role} may not {action}: {expected}, got {status}: {response.text}"
    body = response.json()
    if expected == 404:
        assert body["error"] == "not_found", body
    else:  # refused by the matrix, for this action
        assert body["error"] == "permission_denied", body
        assert f"only {who_may(action)} may {MATRIX[action].why}" in body["message"], body


def test_every_action_has_an_exercise() -> None:
    assert set(EXERCISES) == set(Action), "add an exercise to EXERCISES"
    assert set(EXERCISES) >= WITHOUT_PROJECT
